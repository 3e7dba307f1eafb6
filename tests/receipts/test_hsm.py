"""The PKCS#11 signer against a real SoftHSM2 token made for this test in a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from receipts.algorithms import Algorithm
from receipts.codec import issue_stamp, verify_stamp
from receipts.hsm import Pkcs11Signer, Pkcs11Token, generate_hsm_key
from receipts.keyring import InMemoryKeyStore, Keyring
from receipts.keys import KeyPurpose, SigningKeyError, key_id
from receipts.trust_list import TrustList
from tests.receipts.conftest import FEES, NOW, realistic_claims

MODULE_CANDIDATES = (
    os.environ.get("SOFTHSM2_MODULE", ""),
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
USER_PIN = "246810"


def _softhsm() -> tuple[str, str] | None:
    util = shutil.which("softhsm2-util")
    module = next((m for m in MODULE_CANDIDATES if m and Path(m).is_file()), None)
    return (util, module) if util and module else None


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Token]:
    found = _softhsm()
    if found is None:
        message = "SoftHSM2 is not installed (apt-get install -y softhsm2)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": CI must run the PKCS#11 tests")
        pytest.skip(message)
    util, module = found
    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    config = home / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(config)  # read by the library when it is loaded, so set it process-wide
    try:
        subprocess.run(
            [
                util,
                "--init-token",
                "--free",
                "--label",
                "etimbre-test",
                "--pin",
                USER_PIN,
                "--so-pin",
                "13579",
            ],
            check=True,
            capture_output=True,
        )
        yield Pkcs11Token(module_path=module, token_label="etimbre-test", user_pin=USER_PIN)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_stamp_signed_in_the_hsm_verifies_with_its_public_key(
    token: Pkcs11Token, algorithm: Algorithm
) -> None:
    public_key = generate_hsm_key(token, algorithm, label=f"stamp-{algorithm.label}")
    keyring = Keyring(InMemoryKeyStore())
    record = keyring.register_hsm_key(public_key, KeyPurpose.STAMP, now=NOW - timedelta(days=1))
    assert record.sealed_private_key is None
    assert record.algorithm is algorithm

    with Pkcs11Signer(token, kid=record.kid, algorithm=algorithm) as signer:
        assert signer.kid == key_id(public_key)
        stamps = [issue_stamp(realistic_claims(), signer, FEES) for _ in range(3)]

    trust = TrustList.build(issuer="MA", keys=[record], fees=FEES, issued_at=NOW)
    for stamp in stamps:
        verified = verify_stamp(stamp, trust, audience="FR-PAR", now=NOW)
        assert verified.kid == record.kid
        assert verified.algorithm is algorithm


def test_hsm_private_key_cannot_be_exported(token: Pkcs11Token) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    public_key = generate_hsm_key(token, Algorithm.ES256, label="no-export")
    session = pkcs11.lib(token.module_path).get_token(token_label=token.token_label).open(user_pin=USER_PIN)
    with session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id(public_key))
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False


def test_signer_for_a_kid_the_token_does_not_hold_says_so(token: Pkcs11Token) -> None:
    with pytest.raises(SigningKeyError, match="no single private key with CKA_ID 0001020304050607"):
        Pkcs11Signer(token, kid=bytes(range(8)), algorithm=Algorithm.ES256)


def test_signer_refuses_a_key_of_the_other_algorithm(token: Pkcs11Token) -> None:
    public_key = generate_hsm_key(token, Algorithm.EDDSA, label="ed")
    with pytest.raises(SigningKeyError, match="not a ES256 key"):
        Pkcs11Signer(token, kid=key_id(public_key), algorithm=Algorithm.ES256)


def test_unknown_token_label_says_so(token: Pkcs11Token) -> None:
    missing = Pkcs11Token(module_path=token.module_path, token_label="nope", user_pin=USER_PIN)
    with pytest.raises(SigningKeyError, match="no PKCS#11 token labelled 'nope'"):
        generate_hsm_key(missing, Algorithm.ES256, label="x")
