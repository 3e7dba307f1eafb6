"""Wire schemas of the refund, void and dispute API, separate from the models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from ledger.api.schemas import Amount, Decimal, Reason
from ledger.api.stamps_schemas import STAMP_NUMBER
from ledger.services.disputes import DisputeView
from ledger.services.refunds import RefundView
from ledger.services.voids import VoidView

PaymentReference = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$", examples=["ET4F2A9C01B7D3E5A6F08"]),
]
StampNumberText = Annotated[str, msgspec.Meta(pattern=STAMP_NUMBER, examples=["4821 0933 7561 0284-1"])]


class RefundIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Give money back on a captured payment, for whole stamps."""

    payment_reference: PaymentReference
    reason: Reason
    stamps: (
        Annotated[
            list[StampNumberText],
            msgspec.Meta(
                min_length=1, max_length=20, description="the stamps refunded; left out: every unused stamp"
            ),
        ]
        | None
    ) = None
    amount: (
        Annotated[
            Decimal,
            msgspec.Meta(
                description="what you expect to refund, in the payment's currency: checked, not chosen"
            ),
        ]
        | None
    ) = None


class RefundedStampOut(msgspec.Struct, kw_only=True):
    number: str
    fee_code: str
    amount: Amount
    was_used: bool  # used before the refund: the fee income was reversed; else it is on the deny list
    entry_id: uuid.UUID | None


class RefundOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    reference: str
    payment_reference: str
    state: str  # pending | succeeded | declined | unknown
    amount: Amount
    reason: str
    requested_by: str
    provider_reference: str | None
    detail: str
    created_at: datetime
    resolved_at: datetime | None
    stamps: list[RefundedStampOut]
    payment_state: str
    payment_captured: Amount
    payment_refunded: Amount  # refunded or being refunded

    @classmethod
    def of(cls, view: RefundView) -> RefundOut:
        return cls(
            id=view.id, reference=view.reference, payment_reference=view.payment_ref, state=view.state,
            amount=Amount.of(view.amount), reason=view.reason, requested_by=view.requested_by,
            provider_reference=view.provider_reference, detail=view.detail, created_at=view.created_at,
            resolved_at=view.resolved_at,
            stamps=[
                RefundedStampOut(
                    number=s.number, fee_code=s.fee_code, amount=Amount.of(s.amount), was_used=s.was_used,
                    entry_id=s.entry_id,
                )
                for s in view.stamps
            ],
            payment_state=view.payment_state, payment_captured=Amount.of(view.captured),
            payment_refunded=Amount.of(view.refunded),
        )  # fmt: skip


class VoidIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Release an authorization that was never captured."""

    payment_reference: PaymentReference


class VoidOut(msgspec.Struct, kw_only=True):
    payment_reference: str
    attempt_id: uuid.UUID
    attempt_state: str  # succeeded | declined | unknown
    payment_state: str
    amount: Amount
    detail: str

    @classmethod
    def of(cls, view: VoidView) -> VoidOut:
        return cls(
            payment_reference=view.payment_ref, attempt_id=view.attempt_id, attempt_state=view.attempt_state,
            payment_state=view.payment_state, amount=Amount.of(view.amount), detail=view.detail,
        )  # fmt: skip


class DisputeOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    payment_reference: str
    variant: str
    provider_reference: str
    state: str  # open | won | lost
    amount: Amount
    reason: str
    entry_id: uuid.UUID  # the chargeback entry
    closing_entry_id: uuid.UUID | None  # its reversal (won) or the stamps revoked (lost)
    opened_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, view: DisputeView) -> DisputeOut:
        return cls(
            id=view.id, payment_reference=view.payment_ref, variant=view.variant,
            provider_reference=view.provider_reference, state=view.state, amount=Amount.of(view.amount),
            reason=view.reason, entry_id=view.entry_id, closing_entry_id=view.closing_entry_id,
            opened_at=view.opened_at, closed_at=view.closed_at,
        )  # fmt: skip
