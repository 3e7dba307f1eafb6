"""Helpers for the audit tests: a journal with a few payments, and tampering behind the service's back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection, text

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services import clock
from ledger.services.audit import seals
from ledger.services.audit.header import SealHeader
from ledger.services.audit.keys import KeyringAuditKeys, database_audit_keys
from ledger.services.journal import post_entry
from ledger.services.signing_keys import KeySecrets, StampKeys, create_key
from ledger.settings import Settings
from receipts.algorithms import Algorithm
from receipts.envelope import KdfParams
from receipts.keys import KeyPurpose
from tests.ledger.builders import captured, consumed

PASSPHRASE = "correct horse battery staple"
RECEIPT_SECRET = "receipt-links-secret-for-tests"


def pay(db: Database, settings: Settings, count: int, *, start: int = 0) -> list[uuid.UUID]:
    """`count` captured payments, one transaction each; every third one is followed by a consumption."""
    ids = []
    for number in range(start, start + count):
        with db.write() as session:
            ids.append(
                post_entry(
                    session,
                    captured(settings.chart, Money(5500 + number, "EUR"), payment=f"pay-{number}"),
                    actor="cashier",
                ).entry_id
            )
            if number % 3 == 2:
                ids.append(post_entry(session, consumed(settings.chart, Money(5500, "EUR"))).entry_id)
    return ids


def seal(db: Database, *, force: bool = False, max_records: int = 100_000) -> SealHeader | None:
    with db.write() as session:
        return seals.cut_seal(session, force=force, max_records=max_records)


@contextmanager
def behind_the_back(db: Database) -> Iterator[Connection]:
    """A connection with the append-only guards off, as a database administrator could have it.

    PostgreSQL: `session_replication_role = replica` turns every trigger off for this session. SQLite
    has no such switch: the guard triggers are dropped, then created again exactly as they were.
    """
    with db.engine.connect() as connection:
        if db.dialect == "postgresql":
            with connection.begin():
                connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
                yield connection
            return
        with connection.begin():
            saved = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _ in saved:
                connection.exec_driver_sql(f"DROP TRIGGER {name}")
            yield connection
            for _, sql in saved:
                connection.exec_driver_sql(sql)


def audit_keys(db: Database, settings: Settings, *, algorithm: str = "ES256") -> KeyringAuditKeys:
    """An audit key in the database keyring, valid from two days ago (cheap KDF), and the AuditKeys that
    open it with the test passphrase."""
    with db.write() as session:
        create_key(
            session,
            KeyPurpose.AUDIT,
            passphrase=PASSPHRASE,
            now=clock.now() - timedelta(days=2),
            algorithm=Algorithm.from_label(algorithm),
            kdf=KdfParams(memory_kib=8 * 1024, iterations=1, lanes=1),
            rotate=True,
        )
    return database_audit_keys(StampKeys(settings, KeySecrets(PASSPHRASE, RECEIPT_SECRET.encode())))


def stranger_pem() -> bytes:
    """The public key (PEM) of an audit key nobody trusts."""
    from receipts.algorithms import generate_private_key

    return (
        generate_private_key(Algorithm.ES256)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
