"""What a stamp says: issuer, consulate, validity, number and the fee it paid; never who paid it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from ledger.money import Money
from receipts.fees import FEE_CODE_PATTERN
from receipts.numbers import StampNumber

DEFAULT_VALIDITY = timedelta(days=365)
_UINT32 = 2**32
_ISSUER = re.compile(r"[A-Z]{2}")
_CONSULATE = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,10}")
_CASE_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9./_-]{0,31}")


class ClaimsError(ValueError):
    """A claim value a stamp cannot carry; the message names the claim."""


class Channel(StrEnum):
    """Where the fee was paid."""

    ONLINE = "online"
    COUNTER = "counter"


def _whole_seconds_utc(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ClaimsError(f"{name} must be a timezone-aware datetime, got {value!r}")
    # The wire carries NumericDate (whole seconds); keep the object equal to what a verifier reads back.
    utc = value.astimezone(UTC).replace(microsecond=0)
    if not 0 <= int(utc.timestamp()) < _UINT32:
        raise ClaimsError(f"{name} {utc.isoformat()} is outside the range of a stamp date (1970-2106)")
    return utc


@dataclass(frozen=True, slots=True)
class StampClaims:
    """The signed content of one e-stamp. A bearer token: no name, birth date or passport number, ever.

    issuer: ISO 3166-1 alpha-2 of the issuing state ("MA"); audience: the consulate where the stamp may be
    used ("FR-PAR"); times are whole seconds in UTC (sub-second parts are dropped).
    """

    issuer: str
    audience: str
    issued_at: datetime
    expires_at: datetime
    number: StampNumber
    fee_code: str
    amount: Money
    channel: Channel
    schedule_version: int
    case_reference: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not _ISSUER.fullmatch(self.issuer):
            raise ClaimsError(f"issuer must be an ISO 3166-1 alpha-2 code such as 'MA', got {self.issuer!r}")
        if not isinstance(self.audience, str) or not _CONSULATE.fullmatch(self.audience):
            raise ClaimsError(f"audience must be a consulate code such as 'FR-PAR', got {self.audience!r}")
        object.__setattr__(self, "issued_at", _whole_seconds_utc("issued_at", self.issued_at))
        object.__setattr__(self, "expires_at", _whole_seconds_utc("expires_at", self.expires_at))
        if self.expires_at <= self.issued_at:
            raise ClaimsError(
                f"expires_at {self.expires_at.isoformat()} must be later than "
                f"issued_at {self.issued_at.isoformat()}"
            )
        if not isinstance(self.number, StampNumber):
            raise ClaimsError(f"number must be a StampNumber, got {type(self.number).__name__}")
        if not isinstance(self.fee_code, str) or not FEE_CODE_PATTERN.fullmatch(self.fee_code):
            raise ClaimsError(
                f"fee_code must be 1-32 letters, digits, '.', '_' or '-' (starting with a letter or digit), "
                f"got {self.fee_code!r}"
            )
        if not isinstance(self.amount, Money) or self.amount.minor <= 0:
            raise ClaimsError(f"amount must be a positive Money, got {self.amount!r}")
        if not isinstance(self.channel, Channel):
            raise ClaimsError(f"channel must be a Channel, got {self.channel!r}")
        if type(self.schedule_version) is not int or not 1 <= self.schedule_version < _UINT32:
            raise ClaimsError(f"schedule_version must be a positive integer, got {self.schedule_version!r}")
        if self.case_reference is not None and (
            not isinstance(self.case_reference, str) or not _CASE_REFERENCE.fullmatch(self.case_reference)
        ):
            raise ClaimsError(
                "case_reference must be 1-32 letters, digits, '.', '/', '_' or '-', "
                f"got {self.case_reference!r}"
            )

    @classmethod
    def new(
        cls,
        *,
        issuer: str,
        audience: str,
        fee_code: str,
        amount: Money,
        channel: Channel,
        schedule_version: int,
        issued_at: datetime,
        validity: timedelta = DEFAULT_VALIDITY,
        number: StampNumber | None = None,
        case_reference: str | None = None,
    ) -> StampClaims:
        """Claims for a new stamp: a fresh random number unless given, valid for `validity` from issue."""
        return cls(
            issuer=issuer,
            audience=audience,
            issued_at=issued_at,
            expires_at=issued_at + validity,
            number=number if number is not None else StampNumber.generate(),
            fee_code=fee_code,
            amount=amount,
            channel=channel,
            schedule_version=schedule_version,
            case_reference=case_reference,
        )
