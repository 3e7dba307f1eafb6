"""Interop: inclusion proofs from the service pass a checker written from docs/audit-seals.md alone, and
every altered proof is refused by it."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services import clock
from ledger.services.audit import daily, proofs
from ledger.services.journal import post_entry
from ledger.settings import Settings
from tests.audit.conftest import audit_keys, pay, seal, stranger_pem
from tests.interop import audit_reference as ref
from tests.ledger.builders import captured


def _signed_proof(db: Database, settings: Settings, algorithm: str) -> tuple[str, bytes, str]:
    pay(db, settings, 5)
    with db.write() as session:
        target = post_entry(
            session, captured(settings.chart, Money(12_345, "EUR"), payment="pay-Ω\\t\n", consulate="BE-BRU")
        ).entry_id
    pay(db, settings, 4, start=10)
    seal(db)
    pay(db, settings, 2, start=20)
    seal(db)
    keys = audit_keys(db, settings, algorithm=algorithm)
    zone = settings.service.treasury.timezone
    with db.write() as session:
        daily.sign_day(
            session,
            daily.local_day(clock.now(), zone) - timedelta(days=1),
            timezone=zone,
            keys=keys,
            now=clock.now(),
        )
    with db.read() as session:
        proof = proofs.prove(session, target)
    with db.read() as session:
        pem = keys.verification_keys(session)[0].to_pem().encode()
    return json.dumps(proof.to_json()), pem, str(target)


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_a_proof_checks_out_with_the_reference_checker_through_the_signed_day(
    db: Database, settings: Settings, algorithm: str
) -> None:
    proof, pem, target = _signed_proof(db, settings, algorithm)
    proven = ref.check_proof(proof, trusted_pem=pem)
    assert [(r["record"], r.get("amount")) for r in proven] == [
        ("entry", None),
        ("posting", 12_345),
        ("posting", -12_345),
    ]
    assert (proven[0]["id"], proven[0]["kind"], proven[0]["consulate"]) == (
        target,
        "payment_captured",
        "BE-BRU",
    )
    assert proven[0]["payment_ref"] == "pay-Ω\\t\n"
    assert proven[1]["account"] == "assets:clearing:sandbox:EUR"
    published = json.loads(proof)["seal"]["hash"]
    assert ref.check_proof(proof, seal_hash=published) == proven


def _mutations(proof: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def copy() -> dict[str, Any]:
        changed: dict[str, Any] = json.loads(json.dumps(proof))
        return changed

    def flip(b64: str, at: int) -> str:
        raw = bytearray(base64.b64decode(b64))
        raw[at % len(raw)] ^= 0x01
        return base64.b64encode(bytes(raw)).decode()

    out: dict[str, dict[str, Any]] = {}
    for at in (0, 7, 40, -1):
        changed = copy()
        changed["records"][1]["record"] = flip(changed["records"][1]["record"], at)
        out[f"posting byte {at}"] = changed
    changed = copy()
    changed["records"][0]["path"][0] = "00" * 32
    out["path node"] = changed
    changed = copy()
    changed["records"][0]["leaf_index"] += 1
    out["leaf index"] = changed
    changed = copy()
    changed["records"][0]["path"] = changed["records"][0]["path"][:-1]
    out["short path"] = changed
    changed = copy()
    changed["seal"]["header"] = flip(changed["seal"]["header"], 60)
    out["seal header"] = changed
    changed = copy()
    changed["history"]["path"] = ["11" * 32] + changed["history"]["path"]
    out["history path"] = changed
    changed = copy()
    statement = changed["history"]["daily_seal"]
    statement["statement"] = flip(statement["statement"], 80)
    out["daily statement"] = changed
    changed = copy()
    signature = changed["history"]["daily_seal"]["signature"]
    signature["value"] = flip(signature["value"], 3)
    out["daily signature"] = changed
    return out


def test_every_altered_proof_is_refused_by_the_reference_checker(db: Database, settings: Settings) -> None:
    proof, pem, _ = _signed_proof(db, settings, "ES256")
    for name, changed in _mutations(json.loads(proof)).items():
        with pytest.raises(ref.Refused):
            ref.check_proof(json.dumps(changed), trusted_pem=pem)
            pytest.fail(f"{name}: accepted")
    with pytest.raises(ref.Refused, match="another key"):
        ref.check_proof(proof, trusted_pem=stranger_pem())
