"""The trust list the service publishes: its stamp keys, the fee table and the deny list, signed now."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ledger.services import clock
from ledger.services.signing_keys import DatabaseKeyStore, StampKeys
from ledger.services.stamp_fees import stamp_fee_table
from ledger.services.stamps import denied_numbers
from ledger.settings import Settings
from receipts.keyring import Keyring
from receipts.keys import KeyPurpose, VerificationKey
from receipts.trust_list import TrustList


@dataclass(frozen=True, slots=True)
class SignedTrustList:
    trust_list: TrustList
    document: bytes  # the COSE_Sign1 an offline verifier loads
    anchor: VerificationKey  # the trust-list key that signed it (what verifiers must already trust)


def build_trust_list(session: Session, settings: Settings, *, now: datetime) -> TrustList:
    stamps = settings.service.stamps
    return TrustList.build(
        issuer=stamps.issuer,
        keys=Keyring(DatabaseKeyStore(session)).verification_keys(KeyPurpose.STAMP),
        fees=stamp_fee_table(settings.fees),
        denied=denied_numbers(session, now=now, clock_skew=timedelta(seconds=stamps.clock_skew_seconds)),
        issued_at=now,
        max_offline_age=timedelta(hours=stamps.trust_list_max_age_hours),
    )


def sign_trust_list(
    session: Session, settings: Settings, keys: StampKeys, *, now: datetime | None = None
) -> SignedTrustList:
    """The current trust list, signed by the newest active trust-list key (never a stamp key)."""
    moment = now or clock.now()
    trust_list = build_trust_list(session, settings, now=moment)
    signer = keys.trust_list_signer(session, now=moment)
    record = DatabaseKeyStore(session).get(signer.kid)
    assert record is not None  # the signer was just chosen from the keyring
    document = trust_list.sign(signer)
    return SignedTrustList(replace(trust_list, signed_by=signer.kid), document, record.verification_key())


def trust_anchors(session: Session) -> list[VerificationKey]:
    """Every trust-list key (retired ones included): what offline verifiers pin, as PEM."""
    return [
        record.verification_key() for record in Keyring(DatabaseKeyStore(session)).list(KeyPurpose.TRUST_LIST)
    ]
