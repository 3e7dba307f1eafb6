"""The tamper corpus through the cashier's API: every altered or foreign stamp is refused for its reason,
and the malleated ECDSA twin of a used stamp is answered "already used" (use keys on the number)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

import base45
import cbor2
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services import clock
from ledger.services.signing_keys import DatabaseKeyStore, create_key, retire_key
from ledger.services.stamp_fees import stamp_fee_table
from ledger.settings import Settings
from receipts import cose
from receipts.algorithms import Algorithm, generate_private_key
from receipts.claims import Channel, StampClaims
from receipts.codec import issue_stamp
from receipts.envelope import KdfParams
from receipts.fees import Fee, FeeTable
from receipts.keys import KeyPurpose
from receipts.signers import Signer, SoftwareSigner, open_software_signer
from tests.api.conftest import PASSPHRASE, Keys
from tests.receipts.test_tamper_corpus import expected_reasons

Client = TestClient[Litestar]
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
FAST = KdfParams(memory_kib=8192, iterations=1, lanes=1)


def _verify(client: Client, keys: Keys, text: str) -> dict[str, Any]:
    response = client.post("/stamps/verify", json={"stamp": text}, headers=keys.cashier)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _parts(text: str) -> list[Any]:
    parts: list[Any] = cbor2.loads(base45.b45decode(text[4:])).value
    return parts


def _text(protected: bytes, payload: bytes, signature: bytes) -> str:
    encoded: bytes = base45.b45encode(cose.encode_sign1(protected, payload, signature))
    return "ET1:" + encoded.decode()


def _signed(signer: Signer, payload: bytes, alg: int | None = None) -> str:
    header = {1: alg if alg is not None else int(signer.algorithm), 4: signer.kid}
    protected = cbor2.dumps(header, canonical=True)
    return _text(protected, payload, signer.sign(cose.sig_structure(protected, payload)))


def _claims(settings: Settings, **changes: Any) -> StampClaims:
    base = StampClaims.new(
        issuer="MA",
        audience="FR-PAR",
        fee_code="PASSPORT",
        amount=Money(5500, "EUR"),
        channel=Channel.COUNTER,
        schedule_version=2,
        issued_at=clock.now(),
    )
    return replace(base, **changes)


@pytest.fixture
def corpus(
    client: Client, keys: Keys, stamp_keys: dict[str, str], db: Database, settings: Settings
) -> dict[str, Any]:
    paid = client.post(
        "/counter/payments",
        json={
            "fee_codes": ["PASSPORT", "CNIE", "CNIE"],
            "amount": "71.00",
            "terminal_reference": "T-1",
            "approval_code": "OK1",
        },
        headers={**keys.cashier, "Idempotency-Key": "corpus"},
    ).json()
    with db.read() as session:
        record = DatabaseKeyStore(session).get(bytes.fromhex(stamp_keys["stamp"]))
    assert record is not None
    return {"stamps": paid["stamps"], "signer": open_software_signer(record, PASSPHRASE), "record": record}


def test_every_byte_of_an_issued_stamp_altered_is_refused_for_the_right_reason(
    client: Client, keys: Keys, corpus: dict[str, Any]
) -> None:
    text = corpus["stamps"][0]["qr_text"]
    signed = bytes(base45.b45decode(text[4:]))
    payload_start = 19
    signature_start = payload_start + signed[18] + 2
    seen: Counter[str] = Counter()
    for position in range(len(signed)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(signed)
            tampered[position] ^= mask
            answer = _verify(client, keys, "ET1:" + base45.b45encode(bytes(tampered)).decode())
            allowed = {r.value for r in expected_reasons(position, payload_start, signature_start)}
            assert not answer["usable"]
            assert answer["reason"] in allowed, (position, mask, answer)
            seen[answer["reason"]] += 1
    assert sum(seen.values()) == 3 * len(signed)
    assert seen["bad_signature"] == 3 * (len(signed) - payload_start - 2)


def test_every_named_forgery_is_refused_for_its_reason(
    client: Client, keys: Keys, corpus: dict[str, Any], db: Database, settings: Settings
) -> None:
    signer: SoftwareSigner = corpus["signer"]
    fees = stamp_fee_table(settings.fees)
    text = corpus["stamps"][0]["qr_text"]
    protected, _, payload, _signature = _parts(text)
    now = clock.now()
    stranger = SoftwareSigner(generate_private_key(Algorithm.ES256))
    wider = FeeTable([*fees, Fee("VISA-LONG", 99, "Visa long séjour", "تأشيرة طويلة", "Long-stay visa")])
    with db.write() as session:
        old = create_key(
            session, KeyPurpose.STAMP, passphrase=PASSPHRASE, now=now - timedelta(days=500), kdf=FAST
        )
    old_signer = open_software_signer(old, PASSPHRASE)

    cases: dict[str, tuple[str, str]] = {
        "lower-case prefix": ("et1:" + text[4:], "bad_prefix"),
        "another QR code": ("https://example.org/pay?x=1", "bad_prefix"),
        "oversize": ("ET1:" + "0" * 300, "too_long"),
        "not Base45": ("ET1:abc", "bad_base45"),
        "Base45 length": ("ET1:0000", "bad_base45"),
        "not CBOR": ("ET1:" + base45.b45encode(b"\xd2\x84\x5f").decode(), "bad_cbor"),
        "trailing byte": (
            "ET1:" + base45.b45encode(base45.b45decode(text[4:]) + b"\x00").decode(),
            "bad_cbor",
        ),
        "not COSE_Sign1": (
            "ET1:" + base45.b45encode(cbor2.dumps(cbor2.CBORTag(98, [1]))).decode(),
            "bad_cose",
        ),
        "alg -7 to -8": (_signed(signer, payload, alg=-8), "alg_mismatch"),
        "alg unknown": (_signed(signer, payload, alg=-35), "alg_mismatch"),
        "alg none": (_signed(signer, payload, alg=0), "alg_mismatch"),
        "unknown kid": (issue_stamp(_claims(settings), stranger, fees), "unknown_kid"),
        "signature of another stamp": (
            _text(protected, payload, _parts(corpus["stamps"][1]["qr_text"])[3]),
            "bad_signature",
        ),
        "signed garbage claims": (_signed(signer, cbor2.dumps({1: "MA"})), "bad_claims"),
        "outliving its key": (
            issue_stamp(_claims(settings, expires_at=now + timedelta(days=3000)), signer, fees),
            "key_not_valid",
        ),
        "another consulate": (
            issue_stamp(_claims(settings, audience="BE-BRU"), signer, fees),
            "wrong_consulate",
        ),
        "issued in the future": (
            issue_stamp(
                _claims(settings, issued_at=now + timedelta(hours=1), expires_at=now + timedelta(days=300)),
                signer,
                fees,
            ),
            "not_yet_valid",
        ),
        "expired": (
            issue_stamp(
                _claims(settings, issued_at=now - timedelta(days=400), expires_at=now - timedelta(days=35)),
                old_signer,
                fees,
            ),
            "expired",
        ),
        "fee unknown to the service": (
            issue_stamp(_claims(settings, fee_code="VISA-LONG"), signer, wider),
            "unknown_fee",
        ),
        "genuine but never recorded": (issue_stamp(_claims(settings), signer, fees), "not_in_ledger"),
    }
    for name, (forged, reason) in cases.items():
        answer = _verify(client, keys, forged)
        assert (answer["usable"], answer["reason"]) == (False, reason), (name, answer)
        assert answer["message"]

    refunded = corpus["stamps"][2]
    assert (
        client.post(
            f"/stamps/{refunded['digits']}/refund", json={"reason": "r"}, headers=keys.admin
        ).status_code
        == 200
    )
    assert _verify(client, keys, refunded["qr_text"])["reason"] == "denied"

    with db.write() as session:
        retire_key(session, corpus["record"].kid.hex(), now=clock.now())
    assert _verify(client, keys, corpus["stamps"][1]["qr_text"])["reason"] == "retired_key"


def test_the_malleated_twin_of_a_used_stamp_is_already_used(
    client: Client, keys: Keys, corpus: dict[str, Any]
) -> None:
    stamp = corpus["stamps"][0]
    protected, _, payload, signature = _parts(stamp["qr_text"])
    s = int.from_bytes(signature[32:], "big")
    twin = _text(protected, payload, signature[:32] + (P256_ORDER - s).to_bytes(32, "big"))
    assert twin != stamp["qr_text"]
    assert _verify(client, keys, twin)["usable"]  # unused: the twin is as genuine as the original
    used = client.post(f"/stamps/{stamp['digits']}/consume", headers=keys.cashier)
    assert used.status_code == 200
    answer = _verify(client, keys, twin)
    assert (answer["genuine"], answer["usable"], answer["reason"]) == (True, False, "already_used")
    assert answer["stamp"]["number"] == stamp["number"]
    assert answer["used"]["by"] == used.json()["by"]
    assert (
        client.post(f"/stamps/{answer['stamp']['digits']}/consume", headers=keys.cashier).status_code == 409
    )
