"""Balances now and as of any instant, per account and per slice, from checkpoints plus recent postings."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.db.types import to_micros
from ledger.domain.chart import AccountType
from ledger.money import Money
from ledger.services import clock
from ledger.services.checkpoints import last_cut

SPLITS = frozenset({"consulate", "fee_code"})


@dataclass(frozen=True, slots=True)
class SliceFilter:
    """Which part of the books: every field narrows; an empty filter is the whole ledger."""

    account: str | None = None  # an exact code, or a prefix ending in ":" ("revenue:consular-fees:")
    type: AccountType | None = None
    consulate: str | None = None
    fee_code: str | None = None
    provider: str | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class BalanceRow:
    account: str
    type: AccountType
    balance: Money  # on the account's normal side: a liability with more credits than debits is positive
    debit_minus_credit: int
    consulate: str | None = None  # set when the balance is split by consulate
    fee_code: str | None = None  # set when split by fee code


def _conditions(where: SliceFilter, alias: str) -> tuple[list[str], dict[str, Any]]:
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if where.account is not None:
        if where.account.endswith(":"):
            conditions.append("a.code LIKE :account_prefix ESCAPE '\\'")
            params["account_prefix"] = where.account.replace("%", r"\%").replace("_", r"\_") + "%"
        else:
            conditions.append("a.code = :account")
            params["account"] = where.account
    for column, value in (("type", where.type), ("provider", where.provider), ("currency", where.currency)):
        if value is not None:
            conditions.append(f"a.{column} = :{column}")
            params[column] = str(value)
    for column, value in (("consulate", where.consulate), ("fee_code", where.fee_code)):
        if value is not None:
            conditions.append(f"{alias}.{column} = :slice_{column}")
            params[f"slice_{column}"] = value
    return conditions, params


def balances(
    session: Session,
    where: SliceFilter = SliceFilter(),
    *,
    as_of: datetime | None = None,
    split: frozenset[str] = frozenset(),
) -> list[BalanceRow]:
    """Balances of the matching accounts as of `as_of` (inclusive; default now), in account order.

    The newest checkpoint cut at or before `as_of` gives each slice's balance then; only postings after
    that cut are summed. Checkpoints are cut on an interval, so the sum never covers all history.
    """
    unknown = split - SPLITS
    if unknown:
        raise ValueError(f"cannot split balances by {', '.join(sorted(unknown))}")
    moment = as_of or clock.now()
    cut = last_cut(session, moment)
    base = to_micros(cut) if cut is not None else -(2**62)
    totals: dict[tuple[int, str, str], int] = defaultdict(int)
    accounts: dict[int, tuple[str, str, str]] = {}

    conditions, params = _conditions(where, "k")
    params.update(cut=base, until=to_micros(moment))
    if cut is not None:
        rows = session.execute(
            text(f"""
                SELECT k.account_id, k.consulate, k.fee_code, a.code, a.type, a.currency,
                       (SELECT c.balance FROM balance_checkpoints c
                         WHERE c.account_id = k.account_id AND c.consulate = k.consulate
                           AND c.fee_code = k.fee_code AND c.as_of <= :cut
                         ORDER BY c.as_of DESC LIMIT 1) AS balance
                  FROM balance_keys k JOIN accounts a ON a.id = k.account_id
                 WHERE {" AND ".join(conditions) or "1 = 1"}
            """),
            params,
        )
        for account_id, consulate, fee_code, code, kind, currency, balance in rows:
            if balance is None:  # the slice was first used after that cut
                continue
            accounts[account_id] = (code, kind, currency)
            totals[account_id, consulate, fee_code] += balance

    conditions, params = _conditions(where, "p")
    params.update(cut=base, until=to_micros(moment))
    rows = session.execute(
        text(f"""
            SELECT p.account_id, p.consulate, p.fee_code, a.code, a.type, a.currency, sum(p.amount)
              FROM accounts a JOIN postings p ON p.account_id = a.id
             WHERE p.effective_at > :cut AND p.effective_at <= :until
               {"".join(" AND " + c for c in conditions)}
             GROUP BY p.account_id, p.consulate, p.fee_code, a.code, a.type, a.currency
        """),
        params,
    )
    for account_id, consulate, fee_code, code, kind, currency, total in rows:
        accounts[account_id] = (code, kind, currency)
        totals[account_id, consulate, fee_code] += int(total)

    grouped: dict[tuple[int, str | None, str | None], int] = defaultdict(int)
    for (account_id, consulate, fee_code), amount in totals.items():
        grouped[
            account_id,
            consulate if "consulate" in split else None,
            fee_code if "fee_code" in split else None,
        ] += amount
    result: list[BalanceRow] = []
    for (account_id, consulate, fee_code), amount in grouped.items():
        code, kind, currency = accounts[account_id]
        account_type = AccountType(kind)
        natural = amount if account_type.debit_normal else -amount
        result.append(BalanceRow(code, account_type, Money(natural, currency), amount, consulate, fee_code))
    result.sort(key=lambda row: (row.account, row.consulate or "", row.fee_code or ""))
    return result


def account_balance(session: Session, code: str, *, as_of: datetime | None = None) -> Money | None:
    """The balance of one account on its normal side; None if the account does not exist."""
    rows = balances(session, SliceFilter(account=code), as_of=as_of)
    if rows:
        return rows[0].balance
    currency = session.execute(
        text("SELECT currency FROM accounts WHERE code = :code"), {"code": code}
    ).scalar()
    return None if currency is None else Money(0, currency)
