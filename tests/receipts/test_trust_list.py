"""The signed trust list: its own key, its shelf life, and its use as the verifier's lookup."""

from __future__ import annotations

import json
from datetime import timedelta

import cbor2
import pytest

from receipts.algorithms import Algorithm
from receipts.codec import verify_stamp
from receipts.fees import Fee, FeeTable, FeeTableError
from receipts.keys import KeyPurpose, KeyStatus, SigningKeyError, VerificationKey
from receipts.numbers import StampNumber
from receipts.reasons import Reason, StampRejected
from receipts.trust_list import (
    CONTENT_TYPE,
    TrustList,
    TrustListError,
    TrustListReason,
    load_trust_list,
)
from tests.receipts.conftest import FEES, NOW, StampWorld, realistic_claims

DENIED = StampNumber.parse("4821 0933 7561 0284-1")


def signed_list(world: StampWorld, **changes: object) -> bytes:
    trust = world.trust_with(denied=frozenset({DENIED}), **changes)
    return trust.sign(world.trust_list_signer)


def anchors(world: StampWorld) -> list[VerificationKey]:
    return [world.trust_list_key.verification_key()]


def refusal(document: bytes, world: StampWorld, **kwargs: object) -> TrustListReason:
    options: dict[str, object] = {"now": NOW + timedelta(hours=1)} | kwargs
    trusted = options.pop("anchors", anchors(world))
    with pytest.raises(TrustListError) as refused:
        load_trust_list(document, trusted, **options)  # type: ignore[arg-type]
    assert refused.value.message
    return refused.value.reason


def test_signed_list_loads_back_equal(world: StampWorld) -> None:
    document = signed_list(world)
    loaded = load_trust_list(document, anchors(world), now=NOW + timedelta(days=6))
    assert loaded == world.trust_with(denied=frozenset({DENIED}))
    assert loaded.signed_by == world.trust_list_key.kid
    passport = loaded.fees.by_code("PASSPORT-MINOR")
    assert passport is not None
    assert passport.ar == "جواز السفر (قاصر)"
    assert loaded.fee_by_number(3) == passport


def test_signed_list_is_a_cose_sign1_with_a_content_type(world: StampWorld) -> None:
    item = cbor2.loads(signed_list(world))
    assert item.tag == 18
    header = cbor2.loads(item.value[0])
    assert header == {1: -7, 3: CONTENT_TYPE, 4: world.trust_list_key.kid}
    payload = cbor2.loads(item.value[2])
    assert set(payload) == {"v", "iss", "iat", "max_age", "keys", "fees", "deny"}
    assert payload["deny"] == [int(DENIED)]


def test_the_same_list_signs_to_the_same_payload(world: StampWorld) -> None:
    assert world.trust.to_payload() == world.trust_with().to_payload()


def test_verifier_uses_the_loaded_list_for_keys_deny_list_and_fees(world: StampWorld) -> None:
    trust = load_trust_list(signed_list(world), anchors(world), now=NOW)
    fresh = world.issue(realistic_claims(number=StampNumber.generate()), Algorithm.EDDSA)
    assert verify_stamp(fresh, trust, audience="FR-PAR", now=NOW).algorithm is Algorithm.EDDSA
    refunded = world.issue(realistic_claims(number=DENIED))
    with pytest.raises(StampRejected) as refused:
        verify_stamp(refunded, trust, audience="FR-PAR", now=NOW)
    assert refused.value.reason is Reason.DENIED
    assert trust.fee_by_number(2) == FEES.by_code("CNIE")
    assert trust.fee_by_number(4) is None


def test_a_list_older_than_its_max_offline_age_is_refused(world: StampWorld) -> None:
    document = signed_list(world, max_offline_age=timedelta(days=7))
    load_trust_list(document, anchors(world), now=NOW + timedelta(days=7))
    with pytest.raises(
        TrustListError, match=r"7 d 0 h ago; its maximum offline age is 7 d 0 h: fetch a fresh"
    ):
        load_trust_list(document, anchors(world), now=NOW + timedelta(days=7, minutes=1))
    assert refusal(document, world, now=NOW + timedelta(days=30)) is TrustListReason.STALE


def test_a_list_from_the_future_is_refused(world: StampWorld) -> None:
    assert refusal(signed_list(world), world, now=NOW - timedelta(hours=1)) is TrustListReason.NOT_YET_VALID


def test_a_list_signed_by_a_stamp_key_is_refused(world: StampWorld) -> None:
    """A stamp key is not a trust anchor: a stolen stamp key cannot publish its own trust list."""
    forged = world.trust_with(denied=frozenset()).sign(world.signer())
    assert refusal(forged, world) is TrustListReason.UNKNOWN_SIGNER


def test_a_tampered_list_is_refused(world: StampWorld) -> None:
    document = bytearray(signed_list(world))
    position = document.index("Passeport biométrique".encode())
    document[position] ^= 0x20  # "passeport"
    assert refusal(bytes(document), world) is TrustListReason.BAD_SIGNATURE


def test_deny_list_cannot_be_emptied_in_transit(world: StampWorld) -> None:
    item = cbor2.loads(signed_list(world))
    payload = cbor2.loads(item.value[2]) | {"deny": []}
    swapped = cbor2.dumps(
        cbor2.CBORTag(18, [item.value[0], {}, cbor2.dumps(payload, canonical=True), item.value[3]]),
        canonical=True,
    )
    assert refusal(swapped, world) is TrustListReason.BAD_SIGNATURE


def test_the_anchor_pins_the_algorithm(world: StampWorld) -> None:
    item = cbor2.loads(signed_list(world))
    header = cbor2.dumps({1: -8, 3: CONTENT_TYPE, 4: world.trust_list_key.kid}, canonical=True)
    swapped = cbor2.dumps(cbor2.CBORTag(18, [header, {}, item.value[2], item.value[3]]), canonical=True)
    assert refusal(swapped, world) is TrustListReason.ALG_MISMATCH


def test_a_stamp_is_not_a_trust_list(world: StampWorld) -> None:
    import base45

    stamp = world.issue(realistic_claims())
    assert refusal(base45.b45decode(stamp[4:]), world) is TrustListReason.BAD_FORMAT
    assert refusal(b"{}", world) is TrustListReason.BAD_FORMAT


def test_a_retired_anchor_is_refused(world: StampWorld) -> None:
    from dataclasses import replace

    retired = replace(world.trust_list_key.verification_key(), status=KeyStatus.RETIRED)
    assert refusal(signed_list(world), world, anchors=[retired]) is TrustListReason.SIGNER_NOT_VALID


def test_only_stamp_keys_are_listed(world: StampWorld) -> None:
    with pytest.raises(SigningKeyError, match="trust-list key; a trust list lists stamp keys only"):
        TrustList.build(issuer="MA", keys=[world.trust_list_key], fees=FEES, issued_at=NOW)
    assert world.trust_list_key.purpose is KeyPurpose.TRUST_LIST


def test_json_rendering_is_for_people(world: StampWorld) -> None:
    loaded = load_trust_list(signed_list(world), anchors(world), now=NOW)
    rendered = json.loads(loaded.to_json_text())
    assert rendered["deny"] == ["4821 0933 7561 0284-1"]
    assert rendered["signed_by"] == world.trust_list_key.kid.hex()
    assert rendered["usable_until"] == (NOW + timedelta(days=7)).isoformat()
    assert {k["kid"] for k in rendered["keys"]} == {world.es256.kid.hex(), world.eddsa.kid.hex()}
    assert {k["algorithm"] for k in rendered["keys"]} == {"ES256", "EdDSA"}
    assert rendered["keys"][0]["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert rendered["fees"]["CNIE"] == {
        "number": 2,
        "fr": "Carte nationale d'identité",
        "ar": "البطاقة الوطنية للتعريف",
        "en": "National identity card",
    }
    assert "جواز السفر (قاصر)" in loaded.to_json_text()  # not \u-escaped


def test_fee_table_refuses_ambiguity() -> None:
    with pytest.raises(FeeTableError, match="the ar label"):
        Fee("PASSPORT", 1, "Passeport", " ", "Passport")
    with pytest.raises(FeeTableError, match="fee number 1 is given to both PASSPORT and CNIE"):
        FeeTable([Fee("PASSPORT", 1, "P", "ج", "P"), Fee("CNIE", 1, "C", "ب", "C")])
    with pytest.raises(FeeTableError, match="fee code PASSPORT is listed twice"):
        FeeTable([Fee("PASSPORT", 1, "P", "ج", "P"), Fee("PASSPORT", 2, "P", "ج", "P")])
    with pytest.raises(FeeTableError, match="'VISA-C' has no number"):
        FEES.number_of("VISA-C")


def test_a_verifier_without_the_signing_anchor_refuses_the_list(world: StampWorld) -> None:
    other_anchor = world.eddsa.verification_key()
    assert refusal(signed_list(world), world, anchors=[other_anchor]) is TrustListReason.UNKNOWN_SIGNER
    assert refusal(signed_list(world), world, anchors=[]) is TrustListReason.UNKNOWN_SIGNER
