"""Private keys at rest: Argon2id + AES-GCM, refusing the wrong passphrase, alterations and swapped kids."""

from __future__ import annotations

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from receipts.envelope import EnvelopeError, KdfParams, open_sealed, seal
from receipts.keys import key_id
from tests.receipts.conftest import FAST_KDF, PASSPHRASE


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def sealed(key: ec.EllipticCurvePrivateKey) -> bytes:
    return seal(key, PASSPHRASE, params=FAST_KDF)


def test_sealed_key_opens_with_its_passphrase(key: ec.EllipticCurvePrivateKey, sealed: bytes) -> None:
    opened = open_sealed(sealed, PASSPHRASE, kid=key_id(key.public_key()))
    assert isinstance(opened, ec.EllipticCurvePrivateKey)
    assert opened.private_numbers() == key.private_numbers()


def test_envelope_records_its_version_kdf_parameters_and_salt(sealed: bytes) -> None:
    envelope = cbor2.loads(sealed)
    assert envelope["v"] == 1
    assert envelope["kdf"] == "argon2id"
    assert envelope["aead"] == "A256GCM"
    assert (envelope["m"], envelope["t"], envelope["p"]) == (8192, 1, 1)
    assert len(envelope["salt"]) == 16
    assert len(envelope["nonce"]) == 12


def test_default_cost_is_far_above_pbkdf2_defaults() -> None:
    params = KdfParams()
    assert params.memory_kib >= 64 * 1024
    assert params.iterations >= 3


def test_each_seal_uses_a_fresh_salt_and_nonce(key: ec.EllipticCurvePrivateKey) -> None:
    first, second = (cbor2.loads(seal(key, PASSPHRASE, params=FAST_KDF)) for _ in range(2))
    assert first["salt"] != second["salt"]
    assert first["nonce"] != second["nonce"]


def test_wrong_passphrase_is_refused(key: ec.EllipticCurvePrivateKey, sealed: bytes) -> None:
    with pytest.raises(EnvelopeError, match="wrong passphrase"):
        open_sealed(sealed, PASSPHRASE + "!", kid=key_id(key.public_key()))


def test_empty_passphrase_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(EnvelopeError, match="passphrase is empty"):
        seal(key, "", params=FAST_KDF)


@pytest.mark.parametrize("field", ["ct", "salt", "nonce"])
def test_any_altered_byte_is_refused(key: ec.EllipticCurvePrivateKey, sealed: bytes, field: str) -> None:
    envelope = dict(cbor2.loads(sealed))
    altered = bytearray(envelope[field])
    altered[len(altered) // 2] ^= 0x01
    envelope[field] = bytes(altered)
    with pytest.raises(EnvelopeError, match="altered"):
        open_sealed(cbor2.dumps(envelope, canonical=True), PASSPHRASE, kid=key_id(key.public_key()))


def test_altered_cost_parameters_are_refused(key: ec.EllipticCurvePrivateKey, sealed: bytes) -> None:
    envelope = dict(cbor2.loads(sealed)) | {"t": 2}
    with pytest.raises(EnvelopeError, match="altered"):
        open_sealed(cbor2.dumps(envelope, canonical=True), PASSPHRASE, kid=key_id(key.public_key()))
    huge = dict(cbor2.loads(sealed)) | {"m": 64 * 1024 * 1024}
    with pytest.raises(EnvelopeError, match="memory must be between"):
        open_sealed(cbor2.dumps(huge, canonical=True), PASSPHRASE, kid=key_id(key.public_key()))


def test_envelope_moved_to_another_key_is_refused(sealed: bytes) -> None:
    """The kid is bound as AES-GCM associated data: copying a sealed key onto another row fails."""
    other = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(EnvelopeError, match="belongs to another key id"):
        open_sealed(sealed, PASSPHRASE, kid=key_id(other.public_key()))


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        (b"\xff", "not valid CBOR"),
        (cbor2.dumps([1, 2]), "not a CBOR map"),
        (cbor2.dumps({"v": 2}), "version 2 is not supported"),
        (cbor2.dumps({"v": 1, "kdf": "pbkdf2", "aead": "A256GCM"}), "unsupported KDF"),
        (
            cbor2.dumps(
                {"v": 1, "kdf": "argon2id", "aead": "A256GCM", "m": 8192, "t": 1, "p": 1, "salt": b"s"}
            ),
            "field 'salt'",
        ),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(envelope: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        open_sealed(envelope, PASSPHRASE, kid=bytes(8))


def test_kdf_parameters_below_the_floor_are_refused() -> None:
    with pytest.raises(EnvelopeError, match="memory must be between"):
        KdfParams(memory_kib=1024)
    with pytest.raises(EnvelopeError, match="iterations"):
        KdfParams(iterations=0)
