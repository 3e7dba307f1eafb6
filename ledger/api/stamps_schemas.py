"""Wire schemas of the stamp API (counter payments, verification, use, refund), separate from the models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from ledger.api.schemas import Amount, Decimal, Reason
from ledger.services.issuance import IssuedStamp
from ledger.services.stamps import StampUse, StampView, Verification

FEE_CODE = r"^[A-Z][A-Z0-9-]{0,23}$"
# The QR text as a scanner types it: no control characters, except the CR/LF a keyboard wedge adds.
SCANNED = r"^[^\x00-\x09\x0b\x0c\x0e-\x1f\x7f]*$"
STAMP_NUMBER = r"^[0-9٠-٩۰-۹ \-]{17,40}$"
RECEIPT_FILE = r"^[A-Za-z0-9_-]{32}\.(pdf|png|svg|json)$"
FeeCode = Annotated[str, msgspec.Meta(pattern=FEE_CODE, examples=["PASSPORT"])]


class CounterPaymentIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A card payment taken on the counter's standalone terminal: the cashier types what it printed."""

    fee_codes: Annotated[list[FeeCode], msgspec.Meta(min_length=1, max_length=20)]
    amount: Annotated[
        Decimal, msgspec.Meta(description="what the terminal charged, in the consulate's currency")
    ]
    terminal_reference: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=48,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
            description="the terminal's transaction reference, as printed on its slip",
        ),
    ]
    approval_code: Annotated[
        str, msgspec.Meta(min_length=2, max_length=12, pattern=r"^[A-Za-z0-9]+$", examples=["A1B2C3"])
    ]
    case_reference: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9./_-]*$")]
        | None
    ) = None


class ReceiptLinks(msgspec.Struct, kw_only=True):
    """Where the citizen gets the receipt: secret links, to hand over with the stamp (never logged)."""

    pdf: str
    qr_png: str
    qr_svg: str
    status: str


class IssuedStampOut(msgspec.Struct, kw_only=True):
    number: str  # printed: 4821 0933 7561 0284-1
    digits: str
    fee_code: str
    amount: Amount
    issued_at: datetime
    expires_at: datetime
    qr_text: str
    receipt: ReceiptLinks

    @classmethod
    def of(cls, stamp: IssuedStamp, base_url: str) -> IssuedStampOut:
        link = f"{base_url.rstrip('/')}/receipts/{stamp.receipt_token}"
        return cls(
            number=stamp.number.printed(),
            digits=stamp.number.digits,
            fee_code=stamp.fee_code,
            amount=Amount.of(stamp.amount),
            issued_at=stamp.issued_at,
            expires_at=stamp.expires_at,
            qr_text=stamp.text,
            receipt=ReceiptLinks(
                pdf=f"{link}.pdf", qr_png=f"{link}.png", qr_svg=f"{link}.svg", status=f"{link}.json"
            ),
        )


class CounterPaymentOut(msgspec.Struct, kw_only=True):
    payment_ref: str
    entry_id: uuid.UUID
    consulate: str
    amount: Amount
    terminal_reference: str
    approval_code: str
    stamps: list[IssuedStampOut]


class VerifyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    stamp: Annotated[
        str,
        msgspec.Meta(
            min_length=1, max_length=1000, pattern=SCANNED, description="the scanned QR text, 'ET1:...'"
        ),
    ]


class UseOut(msgspec.Struct, kw_only=True):
    """When, where and by whom."""

    kind: str
    at: datetime
    consulate: str
    by: str
    entry_id: uuid.UUID | None
    detail: str

    @classmethod
    def of(cls, use: StampUse) -> UseOut:
        return cls(
            kind=use.kind,
            at=use.at,
            consulate=use.consulate,
            by=use.actor,
            entry_id=use.entry_id,
            detail=use.detail,
        )


class FeeOut(msgspec.Struct, kw_only=True):
    code: str
    number: int
    fr: str
    ar: str
    en: str


class PresentedStampOut(msgspec.Struct, kw_only=True):
    """What the signed stamp says (only shown once its signature held)."""

    number: str
    digits: str
    issuer: str
    consulate: str
    fee: FeeOut
    amount: Amount
    channel: str
    schedule_version: int
    case_reference: str | None
    issued_at: datetime
    expires_at: datetime
    kid: str
    algorithm: str


class VerificationOut(msgspec.Struct, kw_only=True):
    """The cashier's answer: `usable` only for a genuine, unused stamp of this consulate; otherwise
    `reason` says which check failed (docs/stamp-format.md, plus already_used and not_in_ledger)."""

    usable: bool
    genuine: bool
    reason: str | None
    message: str
    status: str | None
    stamp: PresentedStampOut | None
    used: UseOut | None

    @classmethod
    def of(cls, verification: Verification) -> VerificationOut:
        verified = verification.decision.stamp
        stamp = None
        if verified is not None:
            claims, fee = verified.claims, verified.fee
            stamp = PresentedStampOut(
                number=claims.number.printed(),
                digits=claims.number.digits,
                issuer=claims.issuer,
                consulate=claims.audience,
                fee=FeeOut(code=fee.code, number=fee.number, fr=fee.fr, ar=fee.ar, en=fee.en),
                amount=Amount.of(claims.amount),
                channel=claims.channel.value,
                schedule_version=claims.schedule_version,
                case_reference=claims.case_reference,
                issued_at=claims.issued_at,
                expires_at=claims.expires_at,
                kid=verified.kid.hex(),
                algorithm=verified.algorithm.label,
            )
        return cls(
            usable=verification.usable,
            genuine=verification.genuine,
            reason=verification.reason,
            message=verification.message,
            status=verification.status,
            stamp=stamp,
            used=UseOut.of(verification.used) if verification.used else None,
        )


class StampOut(msgspec.Struct, kw_only=True):
    """A stamp as the ledger knows it (no QR text: the stamp is a bearer token)."""

    number: str
    digits: str
    consulate: str
    fee: FeeOut
    amount: Amount
    channel: str
    schedule_version: int
    case_reference: str | None
    payment_ref: str
    issued_at: datetime
    expires_at: datetime
    status: str
    used: UseOut | None
    events: list[UseOut]

    @classmethod
    def of(cls, view: StampView) -> StampOut:
        final = view.final
        return cls(
            number=view.number.printed(),
            digits=view.number.digits,
            consulate=view.consulate,
            fee=FeeOut(
                code=view.fee.code, number=view.fee.number, fr=view.fee.fr, ar=view.fee.ar, en=view.fee.en
            ),
            amount=Amount.of(view.amount),
            channel=view.channel,
            schedule_version=view.schedule_version,
            case_reference=view.case_reference,
            payment_ref=view.payment_ref,
            issued_at=view.issued_at,
            expires_at=view.expires_at,
            status=view.status,
            used=UseOut.of(final) if final is not None else None,
            events=[UseOut.of(event) for event in view.events],
        )


class ConsumptionOut(msgspec.Struct, kw_only=True):
    number: str
    consulate: str
    fee_code: str
    amount: Amount
    at: datetime
    by: str
    entry_id: uuid.UUID


class RefundIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class RefundOut(msgspec.Struct, kw_only=True):
    number: str
    amount: Amount
    at: datetime
    by: str
    entry_id: uuid.UUID
    provider: str
    payment_ref: str


class ReceiptStatusOut(msgspec.Struct, kw_only=True):
    """What a citizen's status link answers (no QR text, no payment details beyond the reference)."""

    number: str
    consulate: str
    fee_code: str
    amount: Amount
    issued_at: datetime
    expires_at: datetime
    status: str
