"""The ET1 codec: round trips, the size budget, and each check of the verification order in turn."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.money import Money
from receipts.algorithms import Algorithm
from receipts.claims import Channel, ClaimsError
from receipts.codec import (
    MAX_STAMP_BYTES,
    MAX_TEXT_LENGTH,
    PREFIX,
    StampTooLargeError,
    sign_stamp,
    stamp_size,
    verify_stamp,
)
from receipts.keys import KeyStatus
from receipts.numbers import StampNumber
from receipts.qr import make_qr
from receipts.reasons import Reason, StampRejected
from tests.receipts.conftest import FEES, NOW, WIDER_FEES, StampWorld, realistic_claims

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def reason_of(text: str, world: StampWorld, **kwargs: object) -> Reason:
    options: dict[str, object] = {"audience": "FR-PAR", "now": NOW} | kwargs
    trust = options.pop("trust", world.trust)
    with pytest.raises(StampRejected) as refused:
        verify_stamp(text, trust, **options)  # type: ignore[arg-type]
    assert refused.value.message  # every refusal says what is wrong
    return refused.value.reason


def cose_parts(text: str) -> tuple[bytes, object, bytes, bytes]:
    item = cbor2.loads(base45.b45decode(text[len(PREFIX) :]))
    assert item.tag == 18
    protected, unprotected, payload, signature = item.value
    assert isinstance(protected, bytes)
    assert isinstance(payload, bytes)
    assert isinstance(signature, bytes)
    return protected, unprotected, payload, signature


def rebuild(protected: bytes, payload: bytes, signature: bytes, unprotected: object = None) -> str:
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected or {}, payload, signature]), canonical=True)
    return PREFIX + bytes(base45.b45encode(cose)).decode()


def resign(world: StampWorld, protected: bytes, payload: bytes, algorithm: Algorithm) -> str:
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload], canonical=True)
    return rebuild(protected, payload, world.signer(algorithm).sign(to_be_signed))


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_round_trip_gives_back_the_claims(world: StampWorld, algorithm: Algorithm) -> None:
    claims = realistic_claims(case_reference=None)
    text = world.issue(claims, algorithm)
    verified = verify_stamp(text, world.trust, audience="FR-PAR", now=NOW + timedelta(days=10))
    assert verified.claims == claims
    assert verified.number == StampNumber.parse("4821 0933 7561 0284-1")
    assert verified.algorithm is algorithm
    assert verified.kid == world.signer(algorithm).kid


def test_counter_stamp_with_short_fee_code_and_case_reference_round_trips(world: StampWorld) -> None:
    claims = realistic_claims(
        fee_code="CNIE", channel=Channel.COUNTER, case_reference="K7Q2ZX", amount=Money(800, "EUR")
    )
    verified = verify_stamp(world.issue(claims), world.trust, audience="FR-PAR", now=NOW)
    assert verified.claims.case_reference == "K7Q2ZX"
    assert verified.claims.channel is Channel.COUNTER


def test_three_decimal_currency_survives(world: StampWorld) -> None:
    claims = realistic_claims(fee_code="PASSPORT", amount=Money(180_000, "TND"), audience="TN-TUN")
    verified = verify_stamp(world.issue(claims), world.trust, audience="TN-TUN", now=NOW)
    assert verified.claims.amount == Money(180_000, "TND")


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_realistic_stamp_stays_within_144_bytes(world: StampWorld, algorithm: Algorithm) -> None:
    signed = sign_stamp(realistic_claims(), world.signer(algorithm), FEES)
    assert len(signed) == stamp_size(realistic_claims(), FEES)
    # Pinned: if this changes, the size budget in docs/stamp-format.md changes with it.
    assert len(signed) == 136


def test_the_largest_realistic_stamp_stays_within_144_bytes(world: StampWorld) -> None:
    """A three-decimal currency above 65.535, a fee number above 255, a schedule version above 255."""
    largest = realistic_claims(
        fee_code="CIVIL-EXTRACT", amount=Money(180_000, "TND"), audience="TN-TUN", schedule_version=300
    )
    assert len(sign_stamp(largest, world.signer(), FEES)) == 142 <= MAX_STAMP_BYTES == 144


def test_realistic_stamp_is_a_version_10_q_alphanumeric_qr(world: StampWorld) -> None:
    text = world.issue(realistic_claims())
    assert len(text) <= MAX_TEXT_LENGTH == 220
    code = make_qr(text)
    assert code.version <= 10
    assert code.error_correction == 3  # qrcode's constant for level Q (25 %)
    assert [segment.mode for segment in code.data_list] == [2]  # MODE_ALPHA_NUM, one segment


def test_claims_too_big_for_the_qr_are_refused_at_issue(world: StampWorld) -> None:
    claims = realistic_claims(case_reference="RDV-2025-004211-FR-PAR-0001")
    with pytest.raises(StampTooLargeError, match=r"would take \d+ bytes; the budget is 144"):
        world.issue(claims)


def test_no_personal_data_can_be_carried() -> None:
    with pytest.raises(TypeError):
        realistic_claims(holder_name="Amina El Idrissi")
    with pytest.raises(ClaimsError, match="case_reference"):
        realistic_claims(case_reference="Amina El Idrissi")  # spaces: not a reference


# -- the checks, in order -----------------------------------------------------------------------------------


def test_bad_prefix(world: StampWorld) -> None:
    text = world.issue(realistic_claims())
    assert reason_of("ET2:" + text[4:], world) is Reason.BAD_PREFIX
    assert reason_of(text[4:], world) is Reason.BAD_PREFIX
    assert reason_of(text.lower(), world) is Reason.BAD_PREFIX
    assert reason_of("", world) is Reason.BAD_PREFIX


def test_oversize_input_is_refused_before_decoding(world: StampWorld) -> None:
    assert reason_of(PREFIX + "0" * (MAX_TEXT_LENGTH - 3), world) is Reason.TOO_LONG
    assert reason_of(PREFIX + "%" * 1_000_000, world) is Reason.TOO_LONG


def test_trailing_newline_of_a_keyboard_scanner_is_accepted(world: StampWorld) -> None:
    text = world.issue(realistic_claims())
    assert verify_stamp(text + "\r\n", world.trust, audience="FR-PAR", now=NOW).claims == realistic_claims()


@pytest.mark.parametrize(
    "body",
    [
        "abc",  # lower case is not Base45
        "A",  # a lone character
        "GGW",  # a triple above 65535
        ":Z",  # a pair above 255
        "ÀBC",
        "AB\nC",
    ],
)
def test_malformed_base45(world: StampWorld, body: str) -> None:
    assert reason_of(PREFIX + body, world) is Reason.BAD_BASE45


@pytest.mark.parametrize(
    "cose",
    [
        b"",
        b"\xd2",  # a tag and nothing
        b"\xd2\x84\x40\xa0\x40",  # array of 4 with 3 items
        b"\xd2\x9f\x40\xa0\x40\x40\xff",  # indefinite-length array
        b"\xd2\x84\x40\xa0\x40\x40\x00",  # trailing byte
        b"\xd2\x84\x40\xa2\x01\x01\x01\x02\x40\x40",  # duplicate map key
        b"\xd2\x84\x40\xa0\x58\x01\x00\x40",  # non-shortest length
        b"\xff\xff",
    ],
)
def test_malformed_cbor(world: StampWorld, cose: bytes) -> None:
    assert reason_of(PREFIX + base45.b45encode(cose).decode(), world) is Reason.BAD_CBOR


def small_stamp(world: StampWorld) -> str:
    """A stamp with a few bytes to spare, so that crafted variants are not refused as too long first."""
    return world.issue(realistic_claims(fee_code="CNIE"))


def test_cose_structure(world: StampWorld) -> None:
    protected, _, payload, signature = cose_parts(small_stamp(world))
    wrong_tag = cbor2.dumps(cbor2.CBORTag(17, [protected, {}, payload, signature]))
    untagged = cbor2.dumps([protected, {}, payload, signature])
    for cose in (wrong_tag, untagged):
        assert reason_of(PREFIX + base45.b45encode(cose).decode(), world) is Reason.BAD_COSE
    # Nothing unsigned may steer verification: a kid or alg in the unprotected header is refused.
    assert reason_of(rebuild(protected, payload, signature, {1: -8}), world) is Reason.BAD_COSE
    assert reason_of(rebuild(protected, payload, signature[:63]), world) is Reason.BAD_COSE
    no_alg = cbor2.dumps({4: world.es256.kid})
    assert reason_of(rebuild(no_alg, payload, signature), world) is Reason.BAD_COSE
    extra = cbor2.dumps({1: -7, 4: world.es256.kid, 33: b""}, canonical=True)
    assert reason_of(rebuild(extra, payload, signature), world) is Reason.BAD_COSE
    short_kid = cbor2.dumps({1: -7, 4: world.es256.kid[:4]})
    assert reason_of(rebuild(short_kid, payload, signature), world) is Reason.BAD_COSE
    text_alg = cbor2.dumps({1: "none", 4: world.es256.kid})
    assert reason_of(rebuild(text_alg, payload, signature), world) is Reason.BAD_COSE


def test_unknown_kid(world: StampWorld) -> None:
    _, _, payload, signature = cose_parts(world.issue(realistic_claims()))
    stranger = cbor2.dumps({1: -7, 4: bytes(range(8))})
    assert reason_of(rebuild(stranger, payload, signature), world) is Reason.UNKNOWN_KID


@pytest.mark.parametrize("alg", [-8, -35, -257, 0, 1, -7])
def test_the_key_pins_the_algorithm_not_the_stamp(world: StampWorld, alg: int) -> None:
    """ES256 kid with any other alg, or EdDSA kid with -7: refused before the signature is looked at."""
    _, _, payload, signature = cose_parts(small_stamp(world))
    kid = world.es256.kid if alg != -7 else world.eddsa.kid
    swapped = cbor2.dumps({1: alg, 4: kid})
    assert reason_of(rebuild(swapped, payload, signature), world) is Reason.ALG_MISMATCH


def test_a_properly_signed_eddsa_stamp_under_an_es256_kid_is_refused(world: StampWorld) -> None:
    """The algorithm confusion attack: an attacker's own EdDSA signature claiming an ES256 key id."""
    payload = cose_parts(world.issue(realistic_claims()))[2]
    protected = cbor2.dumps({1: -8, 4: world.es256.kid})
    text = resign(world, protected, payload, Algorithm.EDDSA)
    assert reason_of(text, world) is Reason.ALG_MISMATCH


def test_retired_key(world: StampWorld) -> None:
    text = world.issue(realistic_claims())
    key = world.trust.keys[world.es256.kid]
    trust = world.trust_with(keys={**world.trust.keys, key.kid: replace(key, status=KeyStatus.RETIRED)})
    assert reason_of(text, world, trust=trust) is Reason.RETIRED_KEY


def test_bad_signature(world: StampWorld) -> None:
    protected, _, payload, _signature = cose_parts(world.issue(realistic_claims()))
    other = world.issue(realistic_claims(number=StampNumber.generate()))
    foreign_signature = cose_parts(other)[3]
    assert reason_of(rebuild(protected, payload, foreign_signature), world) is Reason.BAD_SIGNATURE
    assert reason_of(rebuild(protected, payload, bytes(64)), world) is Reason.BAD_SIGNATURE


def test_malleated_ecdsa_twin_verifies_to_the_same_stamp_number(world: StampWorld) -> None:
    """(r, n - s) is a second valid signature: consumption must key on the number, which stays the same."""
    text = world.issue(realistic_claims(), Algorithm.ES256)
    protected, _, payload, signature = cose_parts(text)
    r, s = signature[:32], int.from_bytes(signature[32:], "big")
    twin = rebuild(protected, payload, r + (P256_ORDER - s).to_bytes(32, "big"))
    assert twin != text
    original = verify_stamp(text, world.trust, audience="FR-PAR", now=NOW)
    malleated = verify_stamp(twin, world.trust, audience="FR-PAR", now=NOW)
    assert malleated.number == original.number
    assert malleated.claims == original.claims


def test_signed_but_malformed_claims(world: StampWorld) -> None:
    protected = cbor2.dumps({1: -7, 4: world.es256.kid})
    payloads = [
        cbor2.dumps({1: "MA"}),  # claims missing
        cbor2.dumps([1, 2, 3]),
        cbor2.dumps({1: "MA", 3: "FR-PAR", 4: 2, 6: 1, 7: b"\x00" * 8, -1: {}}, canonical=True),
        b"\xa1\x01\x62MA\x00",  # trailing byte inside the signed payload
    ]
    for payload in payloads:
        assert reason_of(resign(world, protected, payload, Algorithm.ES256), world) is Reason.BAD_CLAIMS


def test_stamp_outliving_its_key_is_refused(world: StampWorld) -> None:
    claims = realistic_claims(expires_at=world.es256.not_after + timedelta(days=1))
    assert reason_of(world.issue(claims), world) is Reason.KEY_NOT_VALID


def test_wrong_consulate(world: StampWorld) -> None:
    text = world.issue(realistic_claims())
    assert reason_of(text, world, audience="BE-BRU") is Reason.WRONG_CONSULATE
    # An offline "is it genuine?" check passes no consulate and is told the stamp's own.
    assert verify_stamp(text, world.trust, audience=None, now=NOW).claims.audience == "FR-PAR"


def test_dates_with_clock_skew(world: StampWorld) -> None:
    claims = realistic_claims()
    text = world.issue(claims)
    skew = timedelta(minutes=5)
    verify_stamp(text, world.trust, audience="FR-PAR", now=NOW - skew, clock_skew=skew)
    assert (
        reason_of(text, world, now=NOW - skew - timedelta(seconds=1), clock_skew=skew) is Reason.NOT_YET_VALID
    )
    verify_stamp(text, world.trust, audience="FR-PAR", now=claims.expires_at + skew - timedelta(seconds=1))
    assert reason_of(text, world, now=claims.expires_at + skew) is Reason.EXPIRED
    assert reason_of(text, world, now=claims.expires_at + timedelta(days=400)) is Reason.EXPIRED
    assert (
        reason_of(text, world, now=NOW - timedelta(minutes=2), clock_skew=timedelta(0))
        is Reason.NOT_YET_VALID
    )


def test_denied(world: StampWorld) -> None:
    claims = realistic_claims()
    text = world.issue(claims)
    assert reason_of(text, world, trust=world.trust_with(denied=frozenset({claims.number}))) is Reason.DENIED


def test_unknown_fee(world: StampWorld) -> None:
    text = world.issue(realistic_claims(fee_code="VISA-C"), fees=WIDER_FEES)
    assert reason_of(text, world) is Reason.UNKNOWN_FEE


def test_checks_run_in_the_documented_order(world: StampWorld) -> None:
    """A stamp wrong in several ways is refused for the earliest check, in the documented order."""
    claims = realistic_claims(fee_code="VISA-C", audience="BE-BRU")
    text = world.issue(claims, fees=WIDER_FEES)
    everything_wrong = world.trust_with(denied=frozenset({claims.number}))
    order: list[tuple[dict[str, object], Reason]] = [
        ({"audience": "FR-PAR"}, Reason.WRONG_CONSULATE),
        ({"audience": None, "now": claims.expires_at + timedelta(days=1)}, Reason.EXPIRED),
        ({"audience": None}, Reason.DENIED),
    ]
    for options, expected in order:
        assert reason_of(text, world, trust=everything_wrong, **options) is expected
    assert reason_of(text, world, audience=None) is Reason.UNKNOWN_FEE


def test_a_p384_key_cannot_pose_as_es256(world: StampWorld) -> None:
    from receipts.algorithms import KeyAlgorithmError, algorithm_of

    with pytest.raises(KeyAlgorithmError, match="P-256"):
        algorithm_of(ec.generate_private_key(ec.SECP384R1()).public_key())
