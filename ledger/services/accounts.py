"""Opening accounts on first use and finding their ids; accounts never change once opened."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.db.models import Account
from ledger.domain.chart import AccountSpec, AccountType, Role
from ledger.services import clock

# (database, code) → (id, currency, type). Accounts are immutable and never deleted, so a committed id
# stays true for as long as its database lives.
_known: dict[tuple[str, str], tuple[int, str, str]] = {}
_OPENED_HERE = "etimbre_accounts_opened"


class AccountMismatchError(ValueError):
    """An account code that exists with another currency or type than the chart now says."""


def _check(spec: AccountSpec, currency: str, kind: str) -> None:
    if (currency, kind) != (spec.currency, spec.type.value):
        raise AccountMismatchError(
            f"account {spec.code} exists in {currency} as {kind}; "
            f"the chart asks for {spec.currency} as {spec.type}"
        )


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        statement: Any = postgresql.insert(Account).on_conflict_do_nothing(index_elements=["code"])
    else:
        statement = sqlite.insert(Account).on_conflict_do_nothing(index_elements=["code"])
    session.execute(statement, rows)


def account_ids(session: Session, specs: Iterable[AccountSpec]) -> dict[str, int]:
    """Ids of the accounts, opening those that do not exist yet (safe against concurrent openers)."""
    wanted = {spec.code: spec for spec in specs}
    database = str(session.get_bind().engine.url)
    ids: dict[str, int] = {}
    missing: list[AccountSpec] = []
    for code, spec in wanted.items():
        if (database, code) in _known:
            account_id, currency, kind = _known[database, code]
            _check(spec, currency, kind)
            ids[code] = account_id
        else:
            missing.append(spec)
    if not missing:
        return ids
    opened_here: set[str] = session.info.setdefault(_OPENED_HERE, set())
    for attempt in range(2):
        rows = session.execute(
            select(Account.code, Account.id, Account.currency, Account.type).where(
                Account.code.in_([spec.code for spec in missing])
            )
        ).all()
        for code, account_id, currency, kind in rows:
            _check(wanted[code], currency, kind)
            ids[code] = account_id
            if code not in opened_here:  # only ids that are certainly committed are remembered
                _known[database, code] = (account_id, currency, kind)
        missing = [spec for spec in missing if spec.code not in ids]
        if not missing or attempt:
            break
        opened = clock.now()
        _insert(
            session,
            [
                {
                    "code": s.code,
                    "currency": s.currency,
                    "type": s.type.value,
                    "role": s.role.value,
                    "provider": s.provider,
                    "consulate": s.consulate,
                    "fee_code": s.fee_code,
                    "opened_at": opened,
                }
                for s in missing
            ],
        )
        opened_here.update(spec.code for spec in missing)
    if missing:
        raise RuntimeError(f"could not open accounts {[s.code for s in missing]}")
    return ids


def spec_of(account: Account) -> AccountSpec:
    return AccountSpec(
        code=account.code,
        currency=account.currency,
        type=AccountType(account.type),
        role=Role(account.role),
        provider=account.provider,
        consulate=account.consulate,
        fee_code=account.fee_code,
    )


def forget_cache() -> None:
    """For tests that drop and recreate databases in one process."""
    _known.clear()


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.code)))
