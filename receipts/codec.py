"""The ET1 wire format: "ET1:" + Base45(COSE_Sign1 of CWT claims), issuing and verifying in a fixed order."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import base45

from ledger.money import Money, MoneyError, currency_from_numeric, numeric_code
from receipts import cose
from receipts.algorithms import SIGNATURE_LENGTH, Algorithm, is_valid_signature
from receipts.claims import Channel, ClaimsError, StampClaims
from receipts.fees import MAX_FEE_NUMBER, Fee
from receipts.keys import KeyStatus, VerificationKey
from receipts.numbers import StampNumber, StampNumberError
from receipts.reasons import Reason, StampRejected
from receipts.signers import Signer

PREFIX = "ET1:"
# QR version 10 at error correction Q holds 221 alphanumeric characters: "ET1:" + Base45(144 bytes) = 220.
MAX_STAMP_BYTES = 144
MAX_TEXT_LENGTH = len(PREFIX) + 3 * (MAX_STAMP_BYTES // 2)
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)

# CWT claim keys (RFC 8392) and the one private claim that carries the fee.
CLAIM_ISS = 1
CLAIM_AUD = 3
CLAIM_EXP = 4
CLAIM_IAT = 6
CLAIM_CTI = 7
# A one-byte key keeps every realistic stamp within 144 bytes; the "ET1:" prefix scopes its meaning.
CLAIM_FEE = -1
FEE_NUMBER = 1
FEE_AMOUNT = 2
FEE_CURRENCY = 3
FEE_CHANNEL = 4
FEE_SCHEDULE_VERSION = 5
FEE_CASE_REFERENCE = 6
CHANNEL_CODES: Mapping[Channel, int] = {Channel.ONLINE: 1, Channel.COUNTER: 2}
_CHANNELS_BY_CODE = {code: channel for channel, code in CHANNEL_CODES.items()}
_BASE45 = re.compile(r"[0-9A-Z $%*+\-./:]*")
_UINT32 = 2**32
_PLACEHOLDER_KID = bytes(8)


class StampTooLargeError(ValueError):
    """Claims whose stamp would exceed the 144-byte budget (QR version 10-Q); shorten a text claim."""


FeeLookup = Callable[[int], Fee | None]


class FeeNumbers(Protocol):
    """Fee code <-> the number a stamp carries (receipts.fees.FeeTable is one)."""

    def number_of(self, code: str) -> int: ...

    def by_number(self, number: int) -> Fee | None: ...


class StampTrust(Protocol):
    """What a verifier looks up: stamp keys by kid, the deny list and the fee table."""

    def stamp_key(self, kid: bytes) -> VerificationKey | None: ...

    def is_denied(self, number: StampNumber) -> bool: ...

    def fee_by_number(self, number: int) -> Fee | None: ...


@dataclass(frozen=True, slots=True)
class VerifiedStamp:
    """A stamp that passed every check: its claims, its fee as the fee table names it, its key."""

    claims: StampClaims
    fee: Fee
    kid: bytes
    algorithm: Algorithm

    @property
    def number(self) -> StampNumber:
        return self.claims.number


def encode_claims(claims: StampClaims, fees: FeeNumbers) -> bytes:
    """The CBOR payload (deterministic encoding) of a stamp; the fee code travels as its number."""
    fee: dict[int, Any] = {
        FEE_NUMBER: fees.number_of(claims.fee_code),
        FEE_AMOUNT: claims.amount.minor,
        FEE_CURRENCY: numeric_code(claims.amount.currency),
        FEE_CHANNEL: CHANNEL_CODES[claims.channel],
        FEE_SCHEDULE_VERSION: claims.schedule_version,
    }
    if claims.case_reference is not None:
        fee[FEE_CASE_REFERENCE] = claims.case_reference
    return cose.dumps(
        {
            CLAIM_ISS: claims.issuer,
            CLAIM_AUD: claims.audience,
            CLAIM_EXP: int(claims.expires_at.timestamp()),
            CLAIM_IAT: int(claims.issued_at.timestamp()),
            CLAIM_CTI: claims.number.to_cti(),
            CLAIM_FEE: fee,
        }
    )


def _require(mapping: Mapping[Any, Any], key: int, kind: type, what: str) -> Any:
    value = mapping.get(key)
    if type(value) is not kind:
        raise ClaimsError(f"claim {what} ({key}) is missing or not a {kind.__name__}")
    return value


def _date(value: int, what: str) -> datetime:
    if not 0 <= value < _UINT32:
        raise ClaimsError(f"claim {what} {value} is not a NumericDate a stamp can carry")
    return datetime.fromtimestamp(value, UTC)


def _decode_claims(
    payload: bytes, fee_by_number: Callable[[int], Fee | None]
) -> tuple[StampClaims, Fee | None]:
    """Claims from a payload; ClaimsError (or cose.CborError) names the bad claim.

    A fee number the lookup does not know is not an error here: the verifier refuses it (unknown_fee)
    only after its other checks, so until then the claims carry the number itself as their fee code.
    """
    body = cose.strict_loads(payload)
    if not isinstance(body, Mapping):
        raise ClaimsError("the payload is not a CBOR map")
    expected = {CLAIM_ISS, CLAIM_AUD, CLAIM_EXP, CLAIM_IAT, CLAIM_CTI, CLAIM_FEE}
    if set(body) != expected:
        raise ClaimsError(
            f"the payload must hold exactly claims {sorted(expected)}, got {sorted(body, key=repr)}"
        )
    fee_claim = body[CLAIM_FEE]
    if not isinstance(fee_claim, Mapping):
        raise ClaimsError(f"claim fee ({CLAIM_FEE}) is not a map")
    required = {FEE_NUMBER, FEE_AMOUNT, FEE_CURRENCY, FEE_CHANNEL, FEE_SCHEDULE_VERSION}
    if not required <= set(fee_claim) <= required | {FEE_CASE_REFERENCE}:
        raise ClaimsError(f"the fee claim holds keys {sorted(fee_claim, key=repr)}")
    channel = _CHANNELS_BY_CODE.get(_require(fee_claim, FEE_CHANNEL, int, "channel"))
    if channel is None:
        raise ClaimsError(f"channel code {fee_claim[FEE_CHANNEL]} is not 1 (online) or 2 (counter)")
    case_reference = None
    if FEE_CASE_REFERENCE in fee_claim:
        case_reference = _require(fee_claim, FEE_CASE_REFERENCE, str, "case reference")
    fee_number = _require(fee_claim, FEE_NUMBER, int, "fee number")
    if not 1 <= fee_number <= MAX_FEE_NUMBER:
        raise ClaimsError(f"fee number {fee_number} is out of range")
    fee = fee_by_number(fee_number)
    try:
        currency = currency_from_numeric(_require(fee_claim, FEE_CURRENCY, int, "currency"))
        amount = Money(_require(fee_claim, FEE_AMOUNT, int, "amount"), currency)
        number = StampNumber.from_cti(_require(body, CLAIM_CTI, bytes, "cti"))
    except (MoneyError, StampNumberError) as exc:
        raise ClaimsError(str(exc)) from exc
    claims = StampClaims(
        issuer=_require(body, CLAIM_ISS, str, "iss"),
        audience=_require(body, CLAIM_AUD, str, "aud"),
        issued_at=_date(_require(body, CLAIM_IAT, int, "iat"), "iat"),
        expires_at=_date(_require(body, CLAIM_EXP, int, "exp"), "exp"),
        number=number,
        fee_code=fee.code if fee is not None else str(fee_number),
        amount=amount,
        channel=channel,
        schedule_version=_require(fee_claim, FEE_SCHEDULE_VERSION, int, "schedule version"),
        case_reference=case_reference,
    )
    return claims, fee


def decode_claims(payload: bytes, fees: FeeNumbers) -> StampClaims:
    """Claims from a payload whose signature was checked; ClaimsError names the bad claim."""
    claims, fee = _decode_claims(payload, fees.by_number)
    if fee is None:
        raise ClaimsError(f"fee number {claims.fee_code} is not in the fee table")
    return claims


def stamp_size(claims: StampClaims, fees: FeeNumbers) -> int:
    """Bytes of the signed stamp these claims make, before Base45. Both algorithms give the same size
    (alg is one byte, both signatures are 64), so placeholders stand in for the kid and the signature."""
    protected = cose.protected_header(Algorithm.ES256, _PLACEHOLDER_KID)
    return len(cose.encode_sign1(protected, encode_claims(claims, fees), bytes(SIGNATURE_LENGTH)))


def sign_stamp(claims: StampClaims, signer: Signer, fees: FeeNumbers) -> bytes:
    """The COSE_Sign1 bytes of a stamp; claims that would not fit the QR budget are refused unsigned."""
    size = stamp_size(claims, fees)
    if size > MAX_STAMP_BYTES:
        raise StampTooLargeError(
            f"the stamp would take {size} bytes; the budget is {MAX_STAMP_BYTES} (QR version 10-Q): "
            "shorten the case reference"
        )
    payload = encode_claims(claims, fees)
    protected = cose.protected_header(signer.algorithm, signer.kid)
    return cose.encode_sign1(protected, payload, signer.sign(cose.sig_structure(protected, payload)))


def to_text(signed: bytes) -> str:
    return PREFIX + bytes(base45.b45encode(signed)).decode("ascii")


def issue_stamp(claims: StampClaims, signer: Signer, fees: FeeNumbers) -> str:
    """Claims -> the QR text "ET1:..." signed by `signer`; `fees` gives the fee code's number."""
    return to_text(sign_stamp(claims, signer, fees))


def _reject(reason: Reason, message: str) -> StampRejected:
    return StampRejected(reason, message)


def _decode_text(text: str) -> bytes:
    if not isinstance(text, str):
        raise _reject(Reason.BAD_PREFIX, f"a stamp is text, got {type(text).__name__}")
    text = text.rstrip("\r\n")  # keyboard-wedge scanners end with Enter; a space is a Base45 digit
    if not text.startswith(PREFIX):
        raise _reject(Reason.BAD_PREFIX, f"a stamp starts with {PREFIX!r}, this starts with {text[:4]!r}")
    if len(text) > MAX_TEXT_LENGTH:
        raise _reject(Reason.TOO_LONG, f"{len(text)} characters; a stamp has at most {MAX_TEXT_LENGTH}")
    encoded = text[len(PREFIX) :]
    if not _BASE45.fullmatch(encoded):
        bad = next(c for c in encoded if not _BASE45.fullmatch(c))
        raise _reject(Reason.BAD_BASE45, f"character {bad!r} at {text.index(bad)} is not Base45")
    try:
        signed = bytes(base45.b45decode(encoded))
    except ValueError:
        raise _reject(Reason.BAD_BASE45, "not valid Base45 (length or a group out of range)") from None
    return signed


def _parse(signed: bytes) -> cose.Sign1:
    try:
        return cose.parse_sign1(signed)
    except cose.CborError as exc:
        raise _reject(Reason.BAD_CBOR, str(exc)) from None
    except cose.CoseError as exc:
        raise _reject(Reason.BAD_COSE, str(exc)) from None


def _authenticate(sign1: cose.Sign1, trust: StampTrust) -> VerificationKey:
    """kid lookup, key status, the algorithm the key pins, then the signature."""
    key = trust.stamp_key(sign1.kid)
    if key is None:
        raise _reject(Reason.UNKNOWN_KID, f"no stamp key {sign1.kid.hex()} in the trust list")
    if key.status is KeyStatus.RETIRED:
        raise _reject(Reason.RETIRED_KEY, f"stamp key {sign1.kid.hex()} is retired: its stamps are refused")
    if sign1.alg != key.algorithm:
        raise _reject(
            Reason.ALG_MISMATCH,
            f"the stamp says alg {sign1.alg} but key {sign1.kid.hex()} is pinned to {key.algorithm.label} "
            f"({int(key.algorithm)})",
        )
    if not is_valid_signature(key.public_key, sign1.signature, sign1.to_be_signed()):
        raise _reject(Reason.BAD_SIGNATURE, f"the signature does not verify with key {sign1.kid.hex()}")
    return key


def _signed_claims(
    sign1: cose.Sign1, key: VerificationKey, trust: StampTrust
) -> tuple[StampClaims, Fee | None]:
    try:
        claims, fee = _decode_claims(sign1.payload, trust.fee_by_number)
    except (ClaimsError, cose.CborError) as exc:
        raise _reject(Reason.BAD_CLAIMS, f"signed payload is not valid ET1 claims: {exc}") from None
    if claims.issued_at < key.not_before or claims.expires_at > key.not_after:
        raise _reject(
            Reason.KEY_NOT_VALID,
            f"the stamp is valid {claims.issued_at.isoformat()} - {claims.expires_at.isoformat()}, "
            f"outside its key's window {key.not_before.isoformat()} - {key.not_after.isoformat()}",
        )
    return claims, fee


def _check_use(
    claims: StampClaims,
    *,
    known_fee: bool,
    trust: StampTrust,
    audience: str | None,
    now: datetime,
    clock_skew: timedelta,
) -> None:
    """Audience, dates, deny list, fee code: checked only on claims whose signature held."""
    if audience is not None and claims.audience != audience:
        raise _reject(Reason.WRONG_CONSULATE, f"the stamp is for consulate {claims.audience}, not {audience}")
    if claims.issued_at > now + clock_skew:
        raise _reject(
            Reason.NOT_YET_VALID,
            f"the stamp is issued at {claims.issued_at.isoformat()}, later than now ({now.isoformat()}) "
            f"plus the {int(clock_skew.total_seconds())} s clock skew",
        )
    if now - clock_skew >= claims.expires_at:
        raise _reject(Reason.EXPIRED, f"the stamp expired at {claims.expires_at.isoformat()}")
    if trust.is_denied(claims.number):
        raise _reject(
            Reason.DENIED, f"stamp {claims.number.printed()} is on the deny list (refunded or revoked)"
        )
    if not known_fee:
        raise _reject(Reason.UNKNOWN_FEE, f"fee number {claims.fee_code} is not in the fee table")


def unverified_number(text: str) -> StampNumber:
    """The stamp number in a stamp, WITHOUT checking its signature: for printing and consistency checks of
    stamps this service just issued, never to decide anything about a stamp someone presents."""
    body = cose.strict_loads(_parse(_decode_text(text)).payload)
    if not isinstance(body, Mapping) or type(body.get(CLAIM_CTI)) is not bytes:
        raise ClaimsError("the stamp carries no cti")
    return StampNumber.from_cti(body[CLAIM_CTI])


def verify_stamp(
    text: str,
    trust: StampTrust,
    *,
    audience: str | None,
    now: datetime,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> VerifiedStamp:
    """Check a scanned stamp in the documented order; raise StampRejected at the first failing check.

    Order: prefix and length, Base45, strict CBOR, COSE structure, kid, key status, pinned algorithm,
    signature; only then the claims: well-formed, inside the key's window, audience, dates, deny list, fee.
    `audience` is the consulate where the stamp is presented; None skips that check (an offline tool that
    only asks "is this genuine?"), so a counter must always pass its own consulate.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    sign1 = _parse(_decode_text(text))
    key = _authenticate(sign1, trust)
    claims, fee = _signed_claims(sign1, key, trust)
    _check_use(
        claims, known_fee=fee is not None, trust=trust, audience=audience, now=now, clock_skew=clock_skew
    )
    assert fee is not None  # _check_use refused an unknown fee
    return VerifiedStamp(claims=claims, fee=fee, kid=sign1.kid, algorithm=key.algorithm)
