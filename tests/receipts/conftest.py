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
from receipts.codec import issue_stamp
from receipts.envelope import KdfParams
from receipts.fees import Fee, FeeTable
from receipts.keyring import InMemoryKeyStore, Keyring
from receipts.keys import KeyPurpose, KeyRecord
from receipts.numbers import StampNumber
from receipts.signers import SoftwareSigner, open_software_signer
from receipts.trust_list import TrustList

NOW = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
PASSPHRASE = "correct horse battery staple"
FAST_KDF = KdfParams(memory_kib=8192, iterations=1, lanes=1)
# Codes as long as the service's own (config/fees.toml): on the wire a stamp carries their numbers.
FEES = FeeTable(
    [
        Fee("PASSPORT", 1, "Passeport biométrique", "جواز السفر البيومتري", "Biometric passport"),
        Fee("CNIE", 2, "Carte nationale d'identité", "البطاقة الوطنية للتعريف", "National identity card"),
        Fee("PASSPORT-MINOR", 3, "Passeport (mineur)", "جواز السفر (قاصر)", "Passport (minor)"),
        Fee(
            "CIVIL-EXTRACT",
            300,
            "Extrait d'acte d'état civil",
            "نسخة موجزة من رسم الحالة المدنية",
            "Civil extract",
        ),
    ]
)


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

    def issue(
        self, claims: StampClaims, algorithm: Algorithm = Algorithm.ES256, fees: FeeTable | None = None
    ) -> str:
        return issue_stamp(claims, self.signers[algorithm], fees or FEES)

    def trust_with(self, **changes: Any) -> TrustList:
        return replace(self.trust, **changes)


# What another issuer (or a newer fee table than the trust list's) may stamp: a fee number 99.
WIDER_FEES = FeeTable(
    [*FEES, Fee("VISA-C", 99, "Visa de court séjour", "تأشيرة قصيرة الأمد", "Short-stay visa")]
)


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
    """A stamp as the service issues them: Paris consulate, a minor's passport, 27.50 EUR, 12 months."""
    base = StampClaims.new(
        issuer="MA",
        audience="FR-PAR",
        fee_code="PASSPORT-MINOR",
        amount=Money(2750, "EUR"),
        channel=Channel.ONLINE,
        schedule_version=3,
        issued_at=NOW,
        number=StampNumber.parse("4821 0933 7561 0284-1"),
    )
    return replace(base, **changes)


@pytest.fixture
def make_claims() -> Callable[..., StampClaims]:
    return realistic_claims
