"""Wire schemas of the ledger API (msgspec), separate from the database models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ledger.money import Money
from ledger.services.balances import BalanceRow
from ledger.services.journal import EntryView

# Patterns keep control characters (NUL above all: PostgreSQL refuses it in text) out of every field.
ACCOUNT_CODE = r"^[A-Za-z0-9][A-Za-z0-9:._-]*$"
FEE_CODE = r"^[A-Z0-9-]*$"
CONSULATE = r"^[A-Z]{2}-[A-Z]{3}$"
REFERENCE = r"^[\x21-\x7e]+$"
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$"
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=160, pattern=ACCOUNT_CODE)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=TEXT)]
Decimal = Annotated[str, msgspec.Meta(pattern=r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,3})?$", examples=["55.00"])]


class Amount(msgspec.Struct, kw_only=True):
    """An amount both ways: a decimal string for people, integer minor units for machines."""

    amount: str
    currency: str
    minor: int

    @classmethod
    def of(cls, money: Money) -> Amount:
        return cls(amount=money.to_str(), currency=money.currency, minor=money.minor)


class AccountOut(msgspec.Struct, kw_only=True):
    code: str
    currency: str
    type: str
    role: str
    provider: str
    consulate: str
    fee_code: str
    opened_at: datetime


class PostingOut(msgspec.Struct, kw_only=True):
    line: int
    account: str
    side: Literal["debit", "credit"]
    amount: Amount
    fee_code: str


class EntryOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    consulate: str
    effective_at: datetime
    recorded_at: datetime
    payment: str
    stamp: str
    settlement: str
    import_line: str
    memo: dict[str, object]
    reason: str
    actor: str
    reverses: uuid.UUID | None
    reversed_by: uuid.UUID | None
    postings: list[PostingOut]

    @classmethod
    def of(cls, view: EntryView) -> EntryOut:
        return cls(
            id=view.id,
            kind=view.kind.value,
            consulate=view.consulate,
            effective_at=view.effective_at,
            recorded_at=view.recorded_at,
            payment=view.references.payment,
            stamp=view.references.stamp,
            settlement=view.references.settlement,
            import_line=view.references.import_line,
            memo=view.memo,
            reason=view.reason,
            actor=view.actor,
            reverses=view.reverses,
            reversed_by=view.reversed_by,
            postings=[
                PostingOut(
                    line=p.line_no,
                    account=p.account,
                    side="debit" if p.amount.minor > 0 else "credit",
                    amount=Amount.of(Money(abs(p.amount.minor), p.amount.currency)),
                    fee_code=p.fee_code,
                )
                for p in view.postings
            ],
        )


class EntryPageOut(msgspec.Struct, kw_only=True):
    entries: list[EntryOut]
    next: str | None  # pass as `after` to read the following page


class BalanceOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    account: str
    type: str
    balance: Amount  # on the account's normal side
    debit_minus_credit_minor: int
    consulate: str | None = None
    fee_code: str | None = None

    @classmethod
    def of(cls, row: BalanceRow) -> BalanceOut:
        return cls(
            account=row.account,
            type=row.type.value,
            balance=Amount.of(row.balance),
            debit_minus_credit_minor=row.debit_minus_credit,
            consulate=row.consulate,
            fee_code=row.fee_code,
        )


class BalancesOut(msgspec.Struct, kw_only=True):
    as_of: datetime
    balances: list[BalanceOut]


class AdjustmentLine(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account: Code
    side: Literal["debit", "credit"]
    amount: Decimal
    fee_code: Annotated[str, msgspec.Meta(max_length=24, pattern=FEE_CODE)] = ""


class AdjustmentIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A manual adjustment entry: balanced lines on existing accounts, and why."""

    reason: Reason
    lines: Annotated[list[AdjustmentLine], msgspec.Meta(min_length=2, max_length=50)]
    consulate: Annotated[str, msgspec.Meta(max_length=8, pattern=r"^([A-Z]{2}-[A-Z]{3})?$")] = ""
    effective_at: datetime | None = None


class ReversalIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class Health(msgspec.Struct, kw_only=True, omit_defaults=True):
    status: str
    database: str | None = None
    schema_revision: str | None = None
