"""Shared keys, trust list and claims for the e-stamp tests (with a cheap Argon2id: speed, not secrecy)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.money import Money
from receipts.algorithms import Algorithm
from receipts.claims import Channel, StampClaims
from receipts.envelope import KdfParams
from receipts.keyring import InMemoryKeyStore, Keyring
from receipts.keys import KeyPurpose, KeyRecord
from receipts.numbers import StampNumber
from receipts.signers import SoftwareSigner, open_software_signer
from receipts.trust_list import FeeLabels, TrustList

NOW = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
PASSPHRASE = "correct horse battery staple"
FAST_KDF = KdfParams(memory_kib=8192, iterations=1, lanes=1)
FEES = {
    "PASS-ORD": FeeLabels(fr="Passeport ordinaire", ar="جواز السفر العادي", en="Ordinary passport"),
    "CNI": FeeLabels(
        fr="Carte nationale d'identité", ar="البطاقة الوطنية للتعريف", en="National identity card"
    ),
}


@dataclass
class StampWorld:
    """A keyring with an ES256 and an EdDSA stamp key, a trust-list key, and the trust list over them."""

    keyring: Keyring
    es256: KeyRecord
    eddsa: KeyRecord
    trust_list_key: KeyRecord
    signers: dict[Algorithm, SoftwareSigner]
    trust_list_signer: SoftwareSigner
    trust: TrustList

    def signer(self, algorithm: Algorithm = Algorithm.ES256) -> SoftwareSigner:
        return self.signers[algorithm]

    def trust_with(self, **changes: Any) -> TrustList:
        return replace(self.trust, **changes)


@pytest.fixture(scope="session")
def world() -> StampWorld:
    keyring = Keyring(InMemoryKeyStore())
    start = NOW - timedelta(days=30)
    es256 = keyring.create(KeyPurpose.STAMP, passphrase=PASSPHRASE, now=start, kdf=FAST_KDF)
    eddsa = keyring.create(
        KeyPurpose.STAMP, passphrase=PASSPHRASE, now=start, algorithm=Algorithm.EDDSA, kdf=FAST_KDF
    )
    trust_list_key = keyring.create(KeyPurpose.TRUST_LIST, passphrase=PASSPHRASE, now=start, kdf=FAST_KDF)
    trust = TrustList.build(
        issuer="MA", keys=keyring.verification_keys(KeyPurpose.STAMP), fees=FEES, issued_at=NOW
    )
    return StampWorld(
        keyring=keyring,
        es256=es256,
        eddsa=eddsa,
        trust_list_key=trust_list_key,
        signers={
            Algorithm.ES256: open_software_signer(es256, PASSPHRASE),
            Algorithm.EDDSA: open_software_signer(eddsa, PASSPHRASE),
        },
        trust_list_signer=open_software_signer(trust_list_key, PASSPHRASE),
        trust=trust,
    )


def realistic_claims(**changes: Any) -> StampClaims:
    """A stamp as the service issues them: Paris consulate, ordinary passport, 75.00 EUR, 12 months."""
    base = StampClaims.new(
        issuer="MA",
        audience="FR-PAR",
        fee_code="PASS-ORD",
        amount=Money(7500, "EUR"),
        channel=Channel.ONLINE,
        schedule_version=3,
        issued_at=NOW,
        number=StampNumber.parse("4821 0933 7561 0284-1"),
    )
    return replace(base, **changes)


@pytest.fixture
def make_claims() -> Callable[..., StampClaims]:
    return realistic_claims
