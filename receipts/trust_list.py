"""The trust list: stamp keys, fee table and deny list, signed by a trust-list key, with a shelf life."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from receipts import cose
from receipts.algorithms import Algorithm, is_valid_signature
from receipts.codec import DEFAULT_CLOCK_SKEW
from receipts.fees import LANGUAGES, Fee, FeeTable
from receipts.keys import KeyPurpose, KeyRecord, KeyStatus, SigningKeyError, VerificationKey, load_public_key
from receipts.numbers import StampNumber, StampNumberError
from receipts.signers import Signer

CONTENT_TYPE = "application/vnd.etimbre.trust-list+cbor"
FORMAT_VERSION = 1
DEFAULT_MAX_OFFLINE_AGE = timedelta(days=7)
MAX_TRUST_LIST_BYTES = 16 * 1024 * 1024
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z, the last instant a datetime can hold


class TrustListReason(StrEnum):
    """Why a trust list was refused (stable codes, documented in docs/stamp-format.md)."""

    BAD_FORMAT = "bad_format"
    UNKNOWN_SIGNER = "unknown_signer"
    ALG_MISMATCH = "alg_mismatch"
    BAD_SIGNATURE = "bad_signature"
    SIGNER_NOT_VALID = "signer_not_valid"
    NOT_YET_VALID = "not_yet_valid"
    STALE = "stale"


class TrustListError(Exception):
    """A trust list that must not be used; `reason` is the stable code, `message` says what is wrong."""

    def __init__(self, reason: TrustListReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


def _seconds(value: datetime) -> int:
    return int(value.astimezone(UTC).timestamp())


def _instant(value: Any, what: str) -> datetime:
    if type(value) is not int or not 0 <= value <= _MAX_TIMESTAMP:
        raise ValueError(f"{what} must be a NumericDate (unsigned integer seconds)")
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class TrustList:
    """What an offline verifier trusts. Implements the codec's StampTrust lookups directly.

    `keys` are the stamp keys only (retired ones kept so their stamps are refused by name); the key that
    signs the list itself is a trust anchor the verifier already has, never listed here.
    """

    issuer: str
    issued_at: datetime
    max_offline_age: timedelta
    keys: Mapping[bytes, VerificationKey]
    fees: FeeTable
    denied: frozenset[StampNumber] = frozenset()
    signed_by: bytes | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        object.__setattr__(self, "issued_at", self.issued_at.astimezone(UTC).replace(microsecond=0))
        if self.max_offline_age <= timedelta(0) or self.max_offline_age.microseconds:
            raise ValueError("max_offline_age must be a positive number of whole seconds")
        for kid, key in self.keys.items():
            if kid != key.kid:
                raise ValueError(f"key listed under {kid.hex()} has kid {key.kid.hex()}")

    @classmethod
    def build(
        cls,
        *,
        issuer: str,
        keys: Iterable[KeyRecord],
        fees: Iterable[Fee],
        denied: Iterable[StampNumber] = (),
        issued_at: datetime,
        max_offline_age: timedelta = DEFAULT_MAX_OFFLINE_AGE,
    ) -> TrustList:
        """A trust list from the keyring's stamp keys, the fee table and the deny list."""
        verification_keys: dict[bytes, VerificationKey] = {}
        for record in keys:
            if record.purpose is not KeyPurpose.STAMP:
                raise SigningKeyError(
                    f"key {record.kid.hex()} is a {record.purpose.value} key; "
                    "a trust list lists stamp keys only"
                )
            verification_keys[record.kid] = record.verification_key()
        return cls(
            issuer=issuer,
            issued_at=issued_at,
            max_offline_age=max_offline_age,
            keys=verification_keys,
            fees=fees if isinstance(fees, FeeTable) else FeeTable(fees),
            denied=frozenset(denied),
        )

    # StampTrust -------------------------------------------------------------------------------------------
    def stamp_key(self, kid: bytes) -> VerificationKey | None:
        return self.keys.get(kid)

    def is_denied(self, number: StampNumber) -> bool:
        return number in self.denied

    def fee_by_number(self, number: int) -> Fee | None:
        return self.fees.by_number(number)

    # Wire -------------------------------------------------------------------------------------------------
    @property
    def usable_until(self) -> datetime:
        """After this instant an offline verifier refuses the list (issued_at + max_offline_age)."""
        return self.issued_at + self.max_offline_age

    def to_payload(self) -> bytes:
        """The signed content: deterministic CBOR with text keys (see docs/stamp-format.md)."""
        return cose.dumps(
            {
                "v": FORMAT_VERSION,
                "iss": self.issuer,
                "iat": _seconds(self.issued_at),
                "max_age": int(self.max_offline_age.total_seconds()),
                "keys": [
                    {
                        "kid": key.kid,
                        "alg": int(key.algorithm),
                        "spki": key.public_key_der,
                        "nbf": _seconds(key.not_before),
                        "exp": _seconds(key.not_after),
                        "status": key.status.value,
                    }
                    for key in sorted(self.keys.values(), key=lambda k: k.kid)
                ],
                "fees": {
                    fee.code: {"n": fee.number} | {language: fee.label(language) for language in LANGUAGES}
                    for fee in self.fees
                },
                "deny": sorted(int(number) for number in self.denied),
            }
        )

    def sign(self, signer: Signer) -> bytes:
        """The COSE_Sign1 document (tag 18, content type in the protected header) signed by `signer`."""
        payload = self.to_payload()
        protected = cose.protected_header(signer.algorithm, signer.kid, CONTENT_TYPE)
        return cose.encode_sign1(protected, payload, signer.sign(cose.sig_structure(protected, payload)))

    @classmethod
    def from_payload(cls, payload: bytes, *, signed_by: bytes | None = None) -> TrustList:
        """Parse the payload of a trust list whose signature was already checked; ValueError if malformed."""
        body = cose.strict_loads(payload)
        if not isinstance(body, Mapping) or set(body) != {
            "v",
            "iss",
            "iat",
            "max_age",
            "keys",
            "fees",
            "deny",
        }:
            raise ValueError("the payload must be a map with keys v, iss, iat, max_age, keys, fees, deny")
        if body["v"] != FORMAT_VERSION:
            raise ValueError(f"trust list format {body['v']!r} is not {FORMAT_VERSION}")
        if type(body["iss"]) is not str:
            raise ValueError("iss must be text")
        if type(body["max_age"]) is not int or body["max_age"] <= 0:
            raise ValueError("max_age must be a positive number of seconds")
        keys: dict[bytes, VerificationKey] = {}
        if not isinstance(body["keys"], list | tuple):
            raise ValueError("keys must be an array")
        for index, entry in enumerate(body["keys"]):
            key = _key_from_entry(entry, index)
            if key.kid in keys:
                raise ValueError(f"keys[{index}]: kid {key.kid.hex()} is listed twice")
            keys[key.kid] = key
        fees = body["fees"]
        if not isinstance(fees, Mapping):
            raise ValueError("fees must be a map")
        fee_table = []
        for code, entry in fees.items():
            if type(code) is not str or not isinstance(entry, Mapping) or set(entry) != {"n", *LANGUAGES}:
                raise ValueError(f"fees[{code!r}] must map n, fr, ar and en")
            fee_table.append(Fee(code=code, number=entry["n"], **{k: entry[k] for k in LANGUAGES}))
        deny = body["deny"]
        if (
            not isinstance(deny, list | tuple)
            or any(type(n) is not int for n in deny)
            or list(deny) != sorted(set(deny))
        ):
            raise ValueError("deny must be an ascending array of distinct stamp numbers")
        try:
            denied = frozenset(StampNumber(f"{n:017d}") for n in deny)
        except StampNumberError as exc:
            raise ValueError(f"deny: {exc}") from exc
        return cls(
            issuer=body["iss"],
            issued_at=_instant(body["iat"], "iat"),
            max_offline_age=timedelta(seconds=body["max_age"]),
            keys=keys,
            fees=FeeTable(fee_table),
            denied=denied,
            signed_by=signed_by,
        )

    def to_json(self) -> dict[str, Any]:
        """A rendering for people (and `jq`): hex kids, PEM keys, ISO dates, printed stamp numbers."""
        return {
            "format": f"etimbre trust list v{FORMAT_VERSION}",
            "issuer": self.issuer,
            "issued_at": self.issued_at.isoformat(),
            "max_offline_age_seconds": int(self.max_offline_age.total_seconds()),
            "usable_until": self.usable_until.isoformat(),
            "signed_by": self.signed_by.hex() if self.signed_by is not None else None,
            "keys": [
                {
                    "kid": key.kid.hex(),
                    "algorithm": key.algorithm.label,
                    "status": key.status.value,
                    "not_before": key.not_before.isoformat(),
                    "not_after": key.not_after.isoformat(),
                    "public_key_pem": key.to_pem(),
                }
                for key in sorted(self.keys.values(), key=lambda k: k.kid)
            ],
            "fees": {
                fee.code: {"number": fee.number} | {language: fee.label(language) for language in LANGUAGES}
                for fee in self.fees
            },
            "deny": [number.printed() for number in sorted(self.denied)],
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, indent=2)


def _key_from_entry(entry: Any, index: int) -> VerificationKey:
    where = f"keys[{index}]"
    if not isinstance(entry, Mapping) or set(entry) != {"kid", "alg", "spki", "nbf", "exp", "status"}:
        raise ValueError(f"{where} must be a map with kid, alg, spki, nbf, exp, status")
    if type(entry["spki"]) is not bytes or type(entry["kid"]) is not bytes:
        raise ValueError(f"{where}: kid and spki must be byte strings")
    try:
        algorithm = Algorithm(entry["alg"])
        status = KeyStatus(entry["status"])
        return VerificationKey(
            kid=entry["kid"],
            algorithm=algorithm,
            public_key=load_public_key(entry["spki"]),
            not_before=_instant(entry["nbf"], f"{where}.nbf"),
            not_after=_instant(entry["exp"], f"{where}.exp"),
            status=status,
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def load_trust_list(
    document: bytes,
    anchors: Iterable[VerificationKey],
    *,
    now: datetime,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> TrustList:
    """Verify a signed trust list against the trust-list keys the verifier already trusts, then its age.

    Order: size, strict CBOR and COSE structure, signer among `anchors` (algorithm pinned by the anchor),
    signature, payload, then issue time (not in the future) and age (not older than its max offline age).
    """
    if len(document) > MAX_TRUST_LIST_BYTES:
        raise TrustListError(
            TrustListReason.BAD_FORMAT,
            f"{len(document)} bytes; a trust list has at most {MAX_TRUST_LIST_BYTES}",
        )
    try:
        sign1 = cose.parse_sign1(document, content_type=CONTENT_TYPE)
    except (cose.CborError, cose.CoseError) as exc:
        raise TrustListError(TrustListReason.BAD_FORMAT, f"not a signed trust list: {exc}") from None
    anchor = {a.kid: a for a in anchors}.get(sign1.kid)
    if anchor is None:
        raise TrustListError(
            TrustListReason.UNKNOWN_SIGNER,
            f"signed by {sign1.kid.hex()}, which is not a trusted trust-list key",
        )
    if sign1.alg != anchor.algorithm:
        raise TrustListError(
            TrustListReason.ALG_MISMATCH,
            f"alg {sign1.alg} but key {sign1.kid.hex()} is {anchor.algorithm.label}",
        )
    if not is_valid_signature(anchor.public_key, sign1.signature, sign1.to_be_signed()):
        raise TrustListError(
            TrustListReason.BAD_SIGNATURE, f"signature does not verify with {sign1.kid.hex()}"
        )
    try:
        trust_list = TrustList.from_payload(sign1.payload, signed_by=sign1.kid)
    except (ValueError, TypeError) as exc:
        raise TrustListError(TrustListReason.BAD_FORMAT, f"signed payload is malformed: {exc}") from None
    if (
        anchor.status is KeyStatus.RETIRED
        or not anchor.not_before <= trust_list.issued_at <= anchor.not_after
    ):
        raise TrustListError(
            TrustListReason.SIGNER_NOT_VALID,
            f"trust-list key {sign1.kid.hex()} was not valid at {trust_list.issued_at.isoformat()}",
        )
    if trust_list.issued_at > now + clock_skew:
        raise TrustListError(
            TrustListReason.NOT_YET_VALID,
            f"issued at {trust_list.issued_at.isoformat()}, after now ({now.isoformat()}): check the clock",
        )
    age = now - trust_list.issued_at
    if age > trust_list.max_offline_age:
        raise TrustListError(
            TrustListReason.STALE,
            f"issued at {trust_list.issued_at.isoformat()}, {_human(age)} ago; its maximum offline age is "
            f"{_human(trust_list.max_offline_age)}: fetch a fresh trust list",
        )
    return trust_list


def _human(span: timedelta) -> str:
    hours = int(span.total_seconds()) // 3600
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if days else f"{hours} h {int(span.total_seconds()) // 60 % 60} min"
