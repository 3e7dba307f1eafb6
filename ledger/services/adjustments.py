"""Manual adjustment entries by an administrator: balanced lines on existing accounts, with a reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.db.models import Account
from ledger.domain.entries import EntryDraft, EntryKind, PostingLine
from ledger.money import Money, MoneyError
from ledger.services.accounts import spec_of
from ledger.services.journal import Recorded, post_entry


class FieldError(ValueError):
    """A value in a request that cannot be used; `field` says which one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True, slots=True)
class AdjustmentLine:
    account: str
    side: str  # "debit" | "credit"
    amount: str  # decimal string in the account's currency
    fee_code: str = ""


def post_adjustment(
    session: Session,
    lines: Sequence[AdjustmentLine],
    *,
    reason: str,
    consulate: str = "",
    effective_at: datetime | None = None,
    actor: str,
    idempotency_key: str | None = None,
    known_consulates: set[str] | None = None,
) -> Recorded:
    if consulate and known_consulates is not None and consulate not in known_consulates:
        raise FieldError("consulate", f"unknown consulate {consulate!r}")
    codes = {line.account for line in lines}
    accounts = {a.code: a for a in session.scalars(select(Account).where(Account.code.in_(codes)))}
    postings: list[PostingLine] = []
    for number, line in enumerate(lines):
        account = accounts.get(line.account)
        if account is None:
            raise FieldError(f"lines[{number}].account", f"no account {line.account!r} in the ledger")
        try:
            amount = Money.parse(line.amount, account.currency)
        except MoneyError as error:
            raise FieldError(f"lines[{number}].amount", str(error)) from None
        if amount.minor == 0:
            raise FieldError(f"lines[{number}].amount", "must not be zero")
        postings.append(
            PostingLine(spec_of(account), amount if line.side == "debit" else -amount, line.fee_code)
        )
    draft = EntryDraft(
        kind=EntryKind.ADJUSTMENT,
        lines=tuple(postings),
        consulate=consulate,
        reason=reason,
        effective_at=effective_at,
    )
    return post_entry(session, draft, actor=actor, idempotency_key=idempotency_key)
