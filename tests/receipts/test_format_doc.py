"""docs/stamp-format.md stays true: its examples are what the codec produces and accepts, byte for byte."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ledger.money import Money
from receipts import cose
from receipts.claims import Channel, StampClaims
from receipts.codec import encode_claims, sign_stamp, to_text, verify_stamp
from receipts.fees import Fee, FeeTable
from receipts.keys import VerificationKey
from receipts.numbers import StampNumber
from receipts.reasons import Reason
from receipts.signers import SoftwareSigner
from receipts.trust_list import TrustList, TrustListReason, load_trust_list

DOC = Path(__file__).resolve().parents[2] / "docs" / "stamp-format.md"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ISSUED = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
WINDOW = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
FEES = FeeTable(
    [
        Fee("PASSPORT", 1, "Passeport biométrique", "جواز السفر البيومتري", "Biometric passport"),
        Fee(
            "CNIE",
            2,
            "Carte nationale d'identité électronique",
            "البطاقة الوطنية للتعريف الإلكترونية",
            "Electronic national identity card",
        ),
    ]
)


def block(name: str) -> str:
    found = re.search(rf"<!-- {name} -->\n```\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert found, f"docs/stamp-format.md has no example {name}"
    return found.group(1)


def hex_block(name: str) -> bytes:
    return bytes.fromhex("".join(line[6:] for line in block(name).splitlines()))


def eddsa_signer() -> SoftwareSigner:
    return SoftwareSigner(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


def es256_signer() -> SoftwareSigner:
    scalar = int.from_bytes(hashlib.sha256(b"etimbre ET1 example key").digest(), "big") % P256_ORDER
    return SoftwareSigner(ec.derive_private_key(scalar, ec.SECP256R1()))


def example_claims() -> StampClaims:
    return StampClaims.new(
        issuer="MA",
        audience="FR-PAR",
        fee_code="PASSPORT",
        amount=Money(5000, "EUR"),
        channel=Channel.ONLINE,
        schedule_version=1,
        issued_at=ISSUED,
        number=StampNumber.parse("4821 0933 7561 0284-1"),
    )


def key_from_doc(name: str) -> VerificationKey:
    anchor = VerificationKey.from_pem(block(name))
    return VerificationKey(
        kid=anchor.kid,
        algorithm=anchor.algorithm,
        public_key=anchor.public_key,
        not_before=WINDOW[0],
        not_after=WINDOW[1],
    )


def doc_trust() -> TrustList:
    keys = [key_from_doc("example-eddsa-public-key"), key_from_doc("example-es256-public-key")]
    return TrustList(
        issuer="MA",
        issued_at=datetime(2025, 3, 4, 6, 0, tzinfo=UTC),
        max_offline_age=timedelta(days=7),
        keys={k.kid: k for k in keys},
        fees=FEES,
        denied=frozenset({StampNumber.parse("1111 2222 3333 4444-0")}),
    )


def test_eddsa_example_is_what_the_codec_produces() -> None:
    signer = eddsa_signer()
    assert signer.kid.hex() == "a050837d85070582"
    assert encode_claims(example_claims(), FEES) == hex_block("example-eddsa-payload")
    protected = cose.protected_header(signer.algorithm, signer.kid)
    assert cose.sig_structure(protected, hex_block("example-eddsa-payload")) == hex_block(
        "example-eddsa-sig-structure"
    )
    signed = sign_stamp(example_claims(), signer, FEES)
    assert signed == hex_block("example-eddsa-cose")
    assert to_text(signed) == block("example-eddsa-text").strip()


@pytest.mark.parametrize("name", ["example-eddsa-text", "example-es256-text"])
def test_doc_stamps_verify_against_the_doc_keys(name: str) -> None:
    verified = verify_stamp(
        block(name).strip(), doc_trust(), audience="FR-PAR", now=ISSUED + timedelta(days=90)
    )
    assert verified.number == StampNumber.parse("4821 0933 7561 0284-1")


def test_es256_example_key_is_the_documented_one() -> None:
    assert es256_signer().kid.hex() == "f96ab697a84f61f2"
    assert key_from_doc("example-es256-public-key").kid == es256_signer().kid


def test_trust_list_example_is_what_the_code_produces_and_loads() -> None:
    signer = SoftwareSigner(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64))))
    assert signer.kid.hex() == "824c89aa8efb95ef"
    assert doc_trust().sign(signer) == hex_block("example-trust-list")
    anchor = VerificationKey.from_pem(block("example-trust-list-anchor"))
    loaded = load_trust_list(hex_block("example-trust-list"), [anchor], now=datetime(2025, 3, 5, tzinfo=UTC))
    assert loaded == doc_trust()


def test_every_reason_code_is_documented() -> None:
    documented = set(re.findall(r"\| `([a-z0-9_]+)` \|", DOC.read_text(encoding="utf-8")))
    assert {reason.value for reason in Reason} <= documented
    assert {reason.value for reason in TrustListReason} <= documented
