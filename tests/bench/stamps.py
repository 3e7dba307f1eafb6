"""E-stamp benchmark: issuance and verification per second, QR PNG and PDF receipt in ms, stamps used per
second on PostgreSQL, with baselines.

Run: python tests/bench/stamps.py [--quick] [--json]
Each figure is printed beside a baseline measured in the same run on the same machine:
  issuance      vs raw ECDSA P-256 signing of the same Sig_structure bytes (cryptography)
  verification  vs raw ECDSA P-256 verification of the same bytes
  QR PNG        vs qrcode's own default PNG rendering of the same text
  PDF receipt   vs a one-line reportlab PDF with the same embedded font
  consumption   20 clients using distinct stamps through the service (conditional UPDATE, ledger entry,
                event, one transaction each) vs raw psycopg writing the same rows in the same transactions
The PostgreSQL server comes from ETIMBRE_BENCH_DATABASE_URL (default: 127.0.0.1:5432); the script creates
its own database and drops it. With --json the last line is one JSON object: issue_per_s, verify_per_s,
qr_png_ms, pdf_ms, consume_per_s, and the baselines.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Run as a script, this folder would come first on sys.path, and tests/bench/ledger.py would shadow the
# `ledger` package: the project root takes its place.
sys.path[0] = str(Path(__file__).resolve().parents[2])

import psycopg
import qrcode
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import text
from sqlalchemy.engine import make_url
from uuid_utils.compat import uuid7

from ledger.db import migrate
from ledger.db.engine import Database, make_engine
from ledger.money import Money
from ledger.services.issuance import CapturedPayment, record_captured_payment
from ledger.services.signing_keys import KeySecrets, StampKeys, create_key
from ledger.services.stamps import consume_stamp
from ledger.settings import Settings, load_settings
from receipts import cose
from receipts.algorithms import Algorithm, PrivateKey
from receipts.claims import Channel, StampClaims
from receipts.codec import encode_claims, issue_stamp
from receipts.envelope import KdfParams
from receipts.fees import Fee, FeeTable
from receipts.keys import KeyPurpose, KeyRecord
from receipts.keys import KeyPurpose as StampKeyPurpose
from receipts.numbers import StampNumber
from receipts.pdf import REGULAR, ReceiptData, register_fonts, render_receipt
from receipts.qr import qr_png
from receipts.signers import SoftwareSigner
from receipts.trust_list import TrustList
from receipts.verifier import decide

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
FEES = FeeTable([Fee("PASSPORT", 1, "Passeport biométrique", "جواز السفر البيومتري", "Biometric passport")])
GOALS = {"issue_per_s": 1000, "verify_per_s": 2000, "qr_png_ms": 50, "pdf_ms": 50}
SERVER = os.environ.get("ETIMBRE_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CLIENTS = 20
STAMPS_PER_PAYMENT = 20


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Operations per second over about `seconds` of wall time (after one warm-up call)."""
    operation()
    done, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            operation()
        done += 20
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def median_ms(operation: Callable[[], object], runs: int) -> float:
    operation()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        operation()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def claims(number: StampNumber | None = None) -> StampClaims:
    return StampClaims.new(
        issuer="MA",
        audience="FR-PAR",
        fee_code="PASSPORT",
        amount=Money(5000, "EUR"),
        channel=Channel.ONLINE,
        schedule_version=3,
        issued_at=NOW,
        number=number,
    )


def receipt(text: str, number: StampNumber) -> ReceiptData:
    return ReceiptData(
        stamp_text=text,
        number=number,
        consulate_fr="Consulat général du Royaume du Maroc à Paris",
        consulate_ar="القنصلية العامة للمملكة المغربية بباريس",
        service_fr="Passeport biométrique",
        service_ar="جواز السفر البيومتري",
        amount=Money(5000, "EUR"),
        issued_at=NOW,
        expires_at=NOW + timedelta(days=365),
        payment_reference="PAY-2025-000123",
        status_url="https://etimbre.example.ma/s",
        timezone="Europe/Paris",
        authority_fr="Royaume du Maroc",
        authority_ar="المملكة المغربية",
    )


def measure(quick: bool) -> dict[str, float]:
    seconds = 0.4 if quick else 2.0
    runs = 8 if quick else 40
    ecdsa_key = ec.generate_private_key(ec.SECP256R1())
    private_keys: dict[Algorithm, PrivateKey] = {
        Algorithm.ES256: ecdsa_key,
        Algorithm.EDDSA: ed25519.Ed25519PrivateKey.generate(),
    }
    signers = {algorithm: SoftwareSigner(key) for algorithm, key in private_keys.items()}
    records = [
        KeyRecord.for_key(
            key,
            purpose=KeyPurpose.STAMP,
            not_before=NOW - timedelta(days=1),
            not_after=NOW + timedelta(days=800),
            created_at=NOW,
        )
        for key in private_keys.values()
    ]
    trust = TrustList.build(
        issuer="MA",
        keys=records,
        fees=FEES,
        denied=[StampNumber.generate() for _ in range(10_000)],
        issued_at=NOW,
    )
    sample = claims()
    es256 = signers[Algorithm.ES256]
    to_be_signed = cose.sig_structure(
        cose.protected_header(Algorithm.ES256, es256.kid), encode_claims(sample, FEES)
    )
    der_signature = ecdsa_key.sign(to_be_signed, ec.ECDSA(hashes.SHA256()))
    stamp_texts = {algorithm: issue_stamp(sample, signer, FEES) for algorithm, signer in signers.items()}
    check_time = NOW + timedelta(days=30)

    figures: dict[str, float] = {}
    figures["issue_per_s"] = rate(lambda: issue_stamp(sample, es256, FEES), seconds)
    figures["issue_eddsa_per_s"] = rate(lambda: issue_stamp(sample, signers[Algorithm.EDDSA], FEES), seconds)
    figures["baseline_ecdsa_sign_per_s"] = rate(
        lambda: ecdsa_key.sign(to_be_signed, ec.ECDSA(hashes.SHA256())), seconds
    )

    def verify(text: str) -> None:
        decision = decide(text, trust, audience="FR-PAR", now=check_time)
        assert decision.genuine, decision.message

    figures["verify_per_s"] = rate(lambda: verify(stamp_texts[Algorithm.ES256]), seconds)
    figures["verify_eddsa_per_s"] = rate(lambda: verify(stamp_texts[Algorithm.EDDSA]), seconds)
    public = ecdsa_key.public_key()
    figures["baseline_ecdsa_verify_per_s"] = rate(
        lambda: public.verify(der_signature, to_be_signed, ec.ECDSA(hashes.SHA256())), seconds
    )

    # Fresh stamps for every image, so that nothing is served from the QR grid cache.
    numbers = [StampNumber.generate() for _ in range(3 * runs + 6)]
    pool = [(issue_stamp(claims(number), es256, FEES), number) for number in numbers]
    figures["qr_png_ms"] = median_ms(lambda: qr_png(pool.pop()[0]), runs)

    def qrcode_default() -> None:
        out = io.BytesIO()
        qrcode.make(pool.pop()[0], error_correction=qrcode.constants.ERROR_CORRECT_Q).save(out)

    figures["baseline_qrcode_png_ms"] = median_ms(qrcode_default, runs)

    def pdf() -> None:
        render_receipt(receipt(*pool.pop()))

    figures["pdf_ms"] = median_ms(pdf, runs)

    register_fonts()

    def one_line_pdf() -> None:
        canvas = Canvas(io.BytesIO(), invariant=True, initialFontName=REGULAR)
        canvas.setFont(REGULAR, 12)
        canvas.drawString(72, 720, "Reçu de paiement 75,00 €")
        canvas.showPage()
        canvas.save()

    figures["baseline_one_line_pdf_ms"] = median_ms(one_line_pdf, runs)
    return figures


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    parsed = make_url(SERVER)
    return psycopg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database or "postgres",
        autocommit=True,
    )


def _issue_stamps(database: Database, settings: Settings, keys: StampKeys, count: int) -> list[StampNumber]:
    """`count` PASSPORT stamps at FR-PAR, twenty per recorded payment."""
    now = datetime.now(UTC)
    numbers: list[StampNumber] = []
    for index in range(0, count, STAMPS_PER_PAYMENT):
        fees = ("PASSPORT",) * min(STAMPS_PER_PAYMENT, count - index)
        payment = CapturedPayment(
            payment_ref=f"bench-{index}-{secrets.token_hex(4)}",
            consulate="FR-PAR",
            fee_codes=fees,
            channel="counter",
            provider="terminal",
            amount=Money(5500 * len(fees), "EUR"),
            captured_at=now,
            priced_at=now,
        )
        with database.write() as session:
            paid = record_captured_payment(session, settings, keys, payment, actor="bench")
        numbers.extend(stamp.number for stamp in paid.stamps)
    return numbers


def _in_clients(numbers: list[StampNumber], work: Callable[[list[StampNumber]], None]) -> float:
    """Stamps used per second by CLIENTS threads, each with its own share of distinct stamps."""
    shares = [numbers[i::CLIENTS] for i in range(CLIENTS)]
    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(numbers) / (time.perf_counter() - start)


def _raw_consumer(url: str, accounts: tuple[int, int]) -> Callable[[list[StampNumber]], None]:
    """The same rows as a consumption, written with plain psycopg: the floor the service is compared to."""
    parsed = make_url(url)
    outstanding, revenue = accounts

    def consume(share: list[StampNumber]) -> None:
        with psycopg.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username, dbname=parsed.database
        ) as connection:
            for number in share:
                with connection.transaction():
                    now = int(time.time() * 1_000_000)
                    entry = uuid7()
                    row = connection.execute(
                        "UPDATE stamps SET status = 'consumed', status_changed_at = %s "
                        "WHERE number = %s AND status = 'issued' RETURNING payment_ref",
                        (now, number.digits),
                    ).fetchone()
                    assert row is not None
                    with connection.cursor() as cursor:
                        cursor.executemany(
                            "INSERT INTO postings (entry_id, line_no, account_id, currency, amount, effective_at, "
                            "consulate, fee_code) VALUES (%s, %s, %s, 'EUR', %s, %s, 'FR-PAR', 'PASSPORT')",
                            [(entry, 1, outstanding, 5500, now), (entry, 2, revenue, -5500, now)],
                        )
                    connection.execute(
                        "INSERT INTO entries (id, kind, consulate, effective_at, posting_count, payment_ref, "
                        "stamp_ref, memo) VALUES (%s, 'stamp_consumed', 'FR-PAR', %s, 2, %s, %s, '{}')",
                        (entry, now, row[0], number.digits),
                    )
                    connection.execute(
                        "INSERT INTO stamp_events (number, kind, at, consulate, actor, entry_id, detail) "
                        "VALUES (%s, 'consumed', %s, 'FR-PAR', 'bench', %s, '')",
                        (number.digits, now, entry),
                    )

    return consume


def measure_consumption(quick: bool) -> dict[str, float]:
    """consume_per_s through the service beside raw psycopg writing the same rows, 20 clients each."""
    count = 400 if quick else 4000
    settings = load_settings(environ={})
    name = f"etimbre_bench_stamps_{secrets.token_hex(4)}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    database = Database.from_url(url, pool_size=CLIENTS)
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        passphrase = secrets.token_urlsafe(16)
        fast = KdfParams(memory_kib=8192, iterations=1, lanes=1)  # opening speed is not what is measured
        with database.write() as session:
            create_key(session, StampKeyPurpose.STAMP, passphrase=passphrase, now=datetime.now(UTC), kdf=fast)
        keys = StampKeys(settings, KeySecrets(passphrase, secrets.token_bytes(32)))
        service_stamps = _issue_stamps(database, settings, keys, count)
        raw_stamps = _issue_stamps(database, settings, keys, count)
        # Open the two accounts first, so neither side pays for it.
        with database.write() as session:
            consume_stamp(session, settings, service_stamps.pop(), consulate="FR-PAR", actor="bench")
        with database.read() as session:
            rows = session.execute(text("SELECT code, id FROM accounts")).all()
        ids: dict[str, int] = {str(row[0]): int(row[1]) for row in rows}
        accounts = (ids["liabilities:stamps-outstanding:FR-PAR"], ids["revenue:consular-fees:PASSPORT:EUR"])

        def through_service(share: list[StampNumber]) -> None:
            for number in share:
                with database.write() as session:
                    consume_stamp(session, settings, number, consulate="FR-PAR", actor="bench")

        figures = {
            "baseline_raw_consume_per_s": _in_clients(raw_stamps, _raw_consumer(url, accounts)),
            "consume_per_s": _in_clients(service_stamps, through_service),
        }
        with database.read() as session:
            used = session.execute(
                text("SELECT count(*) FROM stamp_events WHERE kind = 'consumed'")
            ).scalar_one()
        assert used == len(service_stamps) + len(raw_stamps) + 1, used
        return figures
    finally:
        database.dispose()
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _line(label: str, value: str, goal: str, baseline: str) -> str:
    return f"{label:<20}{value:>15}   (goal {goal}; {baseline})"


def report(f: dict[str, float]) -> str:
    """The human-readable figures, each beside its same-run baseline."""
    sign_share = f["issue_per_s"] / f["baseline_ecdsa_sign_per_s"]
    verify_share = f["verify_per_s"] / f["baseline_ecdsa_verify_per_s"]
    return "\n".join(
        [
            _line(
                "issuance ES256",
                f"{f['issue_per_s']:,.0f} /s",
                f">= {GOALS['issue_per_s']:,}",
                f"raw ECDSA sign {f['baseline_ecdsa_sign_per_s']:,.0f} /s, {sign_share:.0%} of it",
            ),
            f"{'issuance EdDSA':<20}{f['issue_eddsa_per_s']:>12,.0f} /s",
            _line(
                "verification ES256",
                f"{f['verify_per_s']:,.0f} /s",
                f">= {GOALS['verify_per_s']:,}",
                f"raw ECDSA verify {f['baseline_ecdsa_verify_per_s']:,.0f} /s, {verify_share:.0%} of it",
            ),
            f"{'verification EdDSA':<20}{f['verify_eddsa_per_s']:>12,.0f} /s",
            _line(
                "QR PNG",
                f"{f['qr_png_ms']:.1f} ms",
                f"<= {GOALS['qr_png_ms']}",
                f"qrcode's default PNG {f['baseline_qrcode_png_ms']:.1f} ms",
            ),
            (
                f"{'consumption (PG)':<20}{f['consume_per_s']:>12,.0f} /s   ({CLIENTS} clients, distinct stamps; "
                f"raw psycopg, same rows {f['baseline_raw_consume_per_s']:,.0f} /s, "
                f"{f['consume_per_s'] / f['baseline_raw_consume_per_s']:.0%} of it)"
            ),
            _line(
                "PDF receipt",
                f"{f['pdf_ms']:.1f} ms",
                f"<= {GOALS['pdf_ms']}",
                f"one-line PDF in the same font {f['baseline_one_line_pdf_ms']:.1f} ms",
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs (for the test suite)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    options = parser.parse_args(argv)
    figures = measure(options.quick)
    figures.update(measure_consumption(options.quick))
    print(report(figures))
    if options.json:
        print(json.dumps({key: round(value, 2) for key, value in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
