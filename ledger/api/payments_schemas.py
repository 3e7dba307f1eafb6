"""Wire schemas of the payment API (online checkout, status, terminal sales, manual queue)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ledger.api.schemas import Amount
from ledger.api.stamps_schemas import FeeCode, IssuedStampOut
from ledger.domain.payments import PaymentStatus
from ledger.services.issuance import IssuedStamp
from providers.model import AutoPostForm, NextAction

CONSULATE = r"^[A-Z]{2}-[A-Z]{3}$"
VARIANT = r"^[a-z0-9][a-z0-9-]{0,39}$"
TERMINAL_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$"
States = Literal[
    "created", "pending", "authorized", "captured", "partially_refunded", "refunded", "failed", "canceled",
    "expired", "unknown", "disputed", "charged_back", "parked",
]  # fmt: skip


class PaymentIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a citizen pays for: the consulate and the services; the price comes from the fee schedule."""

    consulate: Annotated[str, msgspec.Meta(pattern=CONSULATE, examples=["FR-PAR"])]
    fee_codes: Annotated[list[FeeCode], msgspec.Meta(min_length=1, max_length=20)]
    locale: Literal["fr", "ar", "en"] = "fr"


class NextActionOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Where the citizen's browser goes to pay: a redirect (GET), or a form it posts at once."""

    kind: Literal["redirect", "form_post"]
    url: str
    fields: dict[str, str] | None = None

    @classmethod
    def of(cls, action: NextAction | None) -> NextActionOut | None:
        if action is None:
            return None
        if isinstance(action, AutoPostForm):
            return cls(kind="form_post", url=action.url, fields=action.as_dict())
        return cls(kind="redirect", url=action.url)


class PaymentOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A payment as its citizen sees it: no personal data; stamps and receipt links once captured."""

    id: uuid.UUID
    reference: str
    state: States
    consulate: str
    fee_codes: list[str]
    amount: Amount
    status_url: str
    expires_at: datetime
    next_action: NextActionOut | None = None
    stamps: list[IssuedStampOut] = msgspec.field(default_factory=list)


def stamps_out(stamps: tuple[IssuedStamp, ...], base_url: str) -> list[IssuedStampOut]:
    return [IssuedStampOut.of(stamp, base_url) for stamp in stamps]


class TerminalSaleIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A sale on an integrated terminal at the cashier's consulate."""

    variant: Annotated[str, msgspec.Meta(pattern=VARIANT, examples=["sandbox-counter"])]
    terminal_id: Annotated[str, msgspec.Meta(pattern=TERMINAL_ID, examples=["T-PAR-1"])]
    fee_codes: Annotated[list[FeeCode], msgspec.Meta(min_length=1, max_length=20)]


class TerminalSaleOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The sale's state: captured with its stamps, failed, or unknown until a status check settles it."""

    id: uuid.UUID
    reference: str
    state: States
    variant: str
    terminal_id: str
    amount: Amount
    stamps: list[IssuedStampOut] = msgspec.field(default_factory=list)
    message: str = ""


class QueuedOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    payment_id: uuid.UUID
    reference: str
    variant: str
    payment_state: States
    amount: Amount
    reason: str
    since: datetime
    attempt_id: uuid.UUID | None = None
    attempt_kind: str | None = None


def state_of(status: PaymentStatus | str) -> States:
    return PaymentStatus(status).value
