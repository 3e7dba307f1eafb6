"""Stable reason codes for every way a stamp can be refused, and the exception that carries them."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a stamp was refused; the values are stable and documented in docs/stamp-format.md."""

    BAD_PREFIX = "bad_prefix"
    TOO_LONG = "too_long"
    BAD_BASE45 = "bad_base45"
    BAD_CBOR = "bad_cbor"
    BAD_COSE = "bad_cose"
    UNKNOWN_KID = "unknown_kid"
    RETIRED_KEY = "retired_key"
    ALG_MISMATCH = "alg_mismatch"
    BAD_SIGNATURE = "bad_signature"
    BAD_CLAIMS = "bad_claims"
    KEY_NOT_VALID = "key_not_valid"
    WRONG_CONSULATE = "wrong_consulate"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    DENIED = "denied"
    UNKNOWN_FEE = "unknown_fee"
    # Only from the offline verifier reading files: there was no stamp to judge.
    NO_STAMP_FOUND = "no_stamp_found"
    UNREADABLE_FILE = "unreadable_file"


class StampRejected(Exception):  # noqa: N818 -- a refusal is an outcome the caller expects, not a bug
    """A stamp failed one check; `reason` says which (stable code) and `message` says what, for people."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message
