"""Key ids, key records and the keyring's life cycle: create, rotate, retire, list, pick the signer."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from receipts.algorithms import Algorithm
from receipts.codec import issue_stamp, verify_stamp
from receipts.keyring import InMemoryKeyStore, Keyring, NoSigningKeyError
from receipts.keys import KeyPurpose, KeyRecord, KeyStatus, SigningKeyError, VerificationKey, key_id
from receipts.reasons import Reason, StampRejected
from receipts.signers import Signer, open_software_signer
from receipts.trust_list import TrustList
from tests.receipts.conftest import FAST_KDF, FEES, NOW, PASSPHRASE, realistic_claims


def test_kid_is_the_sha256_prefix_of_the_subject_public_key_info() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_id(public) == hashlib.sha256(der).digest()[:8]
    assert key_id(der) == key_id(public)


def test_a_record_refuses_a_kid_that_is_not_its_keys() -> None:
    record = KeyRecord.for_key(
        ed25519.Ed25519PrivateKey.generate(),
        purpose=KeyPurpose.STAMP,
        not_before=NOW,
        not_after=NOW + timedelta(days=1),
        created_at=NOW,
    )
    assert record.algorithm is Algorithm.EDDSA
    with pytest.raises(SigningKeyError, match="not the SHA-256 prefix"):
        replace(record, kid=bytes(8))
    with pytest.raises(SigningKeyError, match="is a EdDSA key, not ES256"):
        replace(record, algorithm=Algorithm.ES256)
    with pytest.raises(SigningKeyError, match="not_after must be later"):
        replace(record, not_after=NOW)
    with pytest.raises(SigningKeyError, match="timezone-aware"):
        replace(record, created_at=NOW.replace(tzinfo=None))


def test_rsa_keys_are_not_stamp_keys() -> None:
    der = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SigningKeyError, match="RSAPublicKey keys are not used"):
        KeyRecord(
            kid=key_id(der),
            purpose=KeyPurpose.STAMP,
            algorithm=Algorithm.ES256,
            public_key=der,
            not_before=NOW,
            not_after=NOW + timedelta(days=1),
            status=KeyStatus.ACTIVE,
            created_at=NOW,
        )


def test_trust_anchor_from_pem_round_trips() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    anchor = VerificationKey.from_pem(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert anchor.kid == key_id(public)
    assert anchor.algorithm is Algorithm.ES256
    assert VerificationKey.from_pem(anchor.to_pem()) == anchor


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(InMemoryKeyStore())


def test_created_key_is_sealed_and_signs(keyring: Keyring) -> None:
    record = keyring.create(KeyPurpose.STAMP, passphrase=PASSPHRASE, now=NOW, kdf=FAST_KDF)
    assert record.sealed_private_key is not None
    assert b"PRIVATE" not in record.sealed_private_key
    signer: Signer = open_software_signer(record, PASSPHRASE)
    assert signer.kid == record.kid
    assert isinstance(signer, Signer)
    assert keyring.signing_key(KeyPurpose.STAMP, now=NOW) == record
    with pytest.raises(NoSigningKeyError, match="no active trust-list key"):
        keyring.signing_key(KeyPurpose.TRUST_LIST, now=NOW)


def test_rotation_signs_with_the_new_key_and_keeps_verifying_the_old(keyring: Keyring) -> None:
    old = keyring.create(KeyPurpose.STAMP, passphrase=PASSPHRASE, now=NOW, kdf=FAST_KDF)
    old_stamp = issue_stamp(realistic_claims(issued_at=NOW), open_software_signer(old, PASSPHRASE), FEES)

    later = NOW + timedelta(days=200)
    new = keyring.rotate(KeyPurpose.STAMP, passphrase=PASSPHRASE, now=later, kdf=FAST_KDF)
    assert new.kid != old.kid
    assert new.algorithm is old.algorithm
    assert keyring.signing_key(KeyPurpose.STAMP, now=later) == new
    assert [r.kid for r in keyring.list(KeyPurpose.STAMP)] == [new.kid, old.kid]

    trust = TrustList.build(issuer="MA", keys=keyring.verification_keys(), fees=FEES, issued_at=later)
    assert verify_stamp(old_stamp, trust, audience="FR-PAR", now=later).kid == old.kid


def test_the_signing_key_must_outlast_the_stamp(keyring: Keyring) -> None:
    short = keyring.create(
        KeyPurpose.STAMP, passphrase=PASSPHRASE, now=NOW, validity=timedelta(days=100), kdf=FAST_KDF
    )
    with pytest.raises(NoSigningKeyError, match="rotate the stamp key"):
        keyring.signing_key(KeyPurpose.STAMP, now=NOW, valid_until=NOW + timedelta(days=365))
    assert keyring.signing_key(KeyPurpose.STAMP, now=NOW, valid_until=NOW + timedelta(days=99)) == short


def test_a_key_not_yet_valid_does_not_sign(keyring: Keyring) -> None:
    keyring.create(KeyPurpose.STAMP, passphrase=PASSPHRASE, now=NOW + timedelta(hours=1), kdf=FAST_KDF)
    with pytest.raises(NoSigningKeyError):
        keyring.signing_key(KeyPurpose.STAMP, now=NOW)


def test_retired_key_neither_signs_nor_verifies(keyring: Keyring) -> None:
    record = keyring.create(KeyPurpose.STAMP, passphrase=PASSPHRASE, now=NOW, kdf=FAST_KDF)
    stamp = issue_stamp(realistic_claims(issued_at=NOW), open_software_signer(record, PASSPHRASE), FEES)
    retired = keyring.retire(record.kid, now=NOW + timedelta(days=1))
    assert retired.status is KeyStatus.RETIRED
    assert retired.retired_at == NOW + timedelta(days=1)
    assert keyring.retire(record.kid, now=NOW + timedelta(days=9)) == retired  # idempotent
    with pytest.raises(NoSigningKeyError):
        keyring.signing_key(KeyPurpose.STAMP, now=NOW + timedelta(days=2))
    trust = TrustList.build(issuer="MA", keys=keyring.verification_keys(), fees=FEES, issued_at=NOW)
    with pytest.raises(StampRejected) as refused:
        verify_stamp(stamp, trust, audience="FR-PAR", now=NOW + timedelta(days=2))
    assert refused.value.reason is Reason.RETIRED_KEY


def test_retiring_an_unknown_key_says_so(keyring: Keyring) -> None:
    with pytest.raises(SigningKeyError, match="no key 0000000000000000"):
        keyring.retire(bytes(8), now=NOW)


def test_eddsa_rotation_keeps_the_algorithm(keyring: Keyring) -> None:
    keyring.create(KeyPurpose.AUDIT, passphrase=PASSPHRASE, now=NOW, algorithm=Algorithm.EDDSA, kdf=FAST_KDF)
    rotated = keyring.rotate(
        KeyPurpose.AUDIT, passphrase=PASSPHRASE, now=NOW + timedelta(days=1), kdf=FAST_KDF
    )
    assert rotated.algorithm is Algorithm.EDDSA
    assert keyring.list(KeyPurpose.STAMP) == []


def test_store_refuses_duplicate_kids() -> None:
    store = InMemoryKeyStore()
    record = KeyRecord.for_key(
        ec.generate_private_key(ec.SECP256R1()),
        purpose=KeyPurpose.STAMP,
        not_before=NOW,
        not_after=NOW + timedelta(days=1),
        created_at=NOW,
    )
    store.add(record)
    with pytest.raises(SigningKeyError, match="already in the keyring"):
        store.add(record)
