"""What a cashier sees after a scan: one verdict among a few, never a guess at a mangled code.

The counter field receives whatever the scanner types: the QR's ``ET1:...`` text, or the 17 printed
digits typed by hand. A scanner set to another keyboard layout (AZERTY typing a QWERTY code) turns digits
into ``&é"'(-è_çà`` and ``:`` into ``;`` or ``.``: such input is *unreadable*, and is never repaired into
a stamp number, because a repair could name somebody else's stamp."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ledger.money import Money
from ledger.services import clock
from ledger.services.stamps import (
    ALREADY_USED,
    NOT_IN_LEDGER,
    Consumption,
    OtherConsulateError,
    StampExpiredError,
    StampNotFoundError,
    StampUnusableError,
    StampUse,
    StampView,
    Verification,
    consume_stamp,
    find_stamp,
    stamp_for_consulate,
    verify_presented,
)
from ledger.settings import Settings
from receipts.fees import Fee
from receipts.numbers import StampNumber, StampNumberError
from receipts.reasons import Reason

PREFIX = "ET1:"
MAX_SCAN_LENGTH = 400  # an ET1 code is at most 4 + 216 characters; anything far longer is not a scan
BASE45 = re.compile(r"^[0-9A-Z $%*+\-./:]+$")
TYPED_NUMBER = re.compile(r"^[0-9][0-9 \-]*[0-9]$")
# Characters a French AZERTY layout types for keys a QWERTY code needs (digits row, ':' and '/').
AZERTY_MARKS = frozenset("&é\"'(§è!çà)_-;,ù²µ")


class Verdict(enum.StrEnum):
    GENUINE = "genuine"  # genuine, unused, for this consulate: it may be consumed
    USED = "used"  # already consumed (when, where, by whom)
    WRONG_CONSULATE = "wrong_consulate"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    FORGED = "forged"  # not signed by us, altered, or unknown to the ledger
    UNREADABLE = "unreadable"  # scan again


@dataclass(frozen=True, slots=True)
class CounterCheck:
    verdict: Verdict
    message: str
    reason: str | None = None  # the verifier's or ledger's stable reason code, when there is one
    number: StampNumber | None = None
    fee: Fee | None = None
    amount: Money | None = None
    expires_at: datetime | None = None
    used: StampUse | None = None  # for USED / REFUNDED / EXPIRED-in-ledger: when, where, by whom

    @property
    def consumable(self) -> bool:
        return self.verdict is Verdict.GENUINE


_UNREADABLE_REASONS = {Reason.BAD_PREFIX, Reason.TOO_LONG, Reason.BAD_BASE45}
_BY_FINAL_EVENT = {"consumed": Verdict.USED, "refunded": Verdict.REFUNDED, "expired": Verdict.EXPIRED}


def _unreadable(scanned: str) -> CounterCheck:
    if any(mark in AZERTY_MARKS for mark in scanned) or scanned[:4].upper() in {
        "ET&;",
        "ET&.",
        "ET&:",
        "ET1;",
    }:
        message = (
            "unreadable, scan again: the scanner seems to type on another keyboard layout (AZERTY); "
            "set it to the layout of this computer"
        )
    else:
        message = "unreadable, scan again (or type the 17 digits printed under the code)"
    return CounterCheck(Verdict.UNREADABLE, message)


def _from_view(view: StampView, verdict: Verdict, message: str, reason: str | None = None) -> CounterCheck:
    return CounterCheck(
        verdict,
        message,
        reason=reason,
        number=view.number,
        fee=view.fee,
        amount=view.amount,
        expires_at=view.expires_at,
        used=view.final,
    )


def _ledger_verdict(view: StampView, now: datetime, skew: timedelta) -> CounterCheck:
    if view.status == "issued" and view.expires_at <= now - skew:
        return _from_view(
            view, Verdict.EXPIRED, f"expired: stamp {view.number} was valid until {view.expires_at}"
        )
    if view.status == "issued":
        return _from_view(view, Verdict.GENUINE, f"genuine and unused: stamp {view.number}")
    verdict = _BY_FINAL_EVENT[view.status]
    final = view.final
    assert final is not None  # a final status always has its event
    return _from_view(
        view,
        verdict,
        f"{verdict.value.replace('_', ' ')}: stamp {view.number}, {final.kind} at {final.consulate} "
        f"on {final.at.isoformat(timespec='minutes')} by {final.actor}",
        reason=ALREADY_USED,
    )


def _typed(session: Session, settings: Settings, scanned: str, consulate: str, now: datetime) -> CounterCheck:
    try:
        number = StampNumber.parse(scanned)
    except StampNumberError as error:
        return CounterCheck(Verdict.UNREADABLE, f"unreadable, check the digits: {error}")
    try:
        view = stamp_for_consulate(session, settings, number, consulate)
    except StampNotFoundError:
        return CounterCheck(
            Verdict.FORGED, f"no stamp {number} was ever issued: do not accept it", NOT_IN_LEDGER, number
        )
    except OtherConsulateError:
        return CounterCheck(
            Verdict.WRONG_CONSULATE,
            f"stamp {number} is for another consulate; it cannot be used at {consulate}",
            Reason.WRONG_CONSULATE.value,
            number,
        )
    skew = timedelta(seconds=settings.service.stamps.clock_skew_seconds)
    return _ledger_verdict(view, now, skew)


def _refused(verification: Verification, text: str, consulate: str) -> CounterCheck:
    """A scan the verifier refused: which of the cashier's verdicts it is."""
    decision = verification.decision
    reason = decision.reason
    if reason in _UNREADABLE_REASONS:
        return _unreadable(text)
    if reason is Reason.WRONG_CONSULATE:
        return CounterCheck(
            Verdict.WRONG_CONSULATE, f"{decision.message}; it cannot be used at {consulate}", reason.value
        )
    if reason is Reason.EXPIRED:
        return CounterCheck(Verdict.EXPIRED, decision.message, reason.value)
    if reason is Reason.DENIED:
        return CounterCheck(Verdict.REFUNDED, decision.message, reason.value)
    return CounterCheck(
        Verdict.FORGED, f"not a genuine stamp, do not accept it: {decision.message}", verification.reason
    )


def check_scan(
    session: Session, settings: Settings, scanned: str, *, consulate: str, now: datetime | None = None
) -> CounterCheck:
    """The verdict for what the counter field received, at the cashier's consulate."""
    moment = now or clock.now()
    text = scanned.strip()
    if not text or len(text) > MAX_SCAN_LENGTH:
        return _unreadable(text)
    if TYPED_NUMBER.fullmatch(text):
        return _typed(session, settings, text, consulate, moment)
    if not text.startswith(PREFIX) or not BASE45.fullmatch(text):
        return _unreadable(text)
    verification = verify_presented(session, settings, text, consulate=consulate, now=moment)
    decision = verification.decision
    if not decision.genuine:
        return _refused(verification, text, consulate)
    assert decision.number is not None
    if verification.reason == NOT_IN_LEDGER:
        return CounterCheck(Verdict.FORGED, verification.message, NOT_IN_LEDGER, decision.number)
    view = find_stamp(session, settings, decision.number)
    skew = timedelta(seconds=settings.service.stamps.clock_skew_seconds)
    return _ledger_verdict(view, moment, skew)


@dataclass(frozen=True, slots=True)
class CounterUse:
    """The outcome of the consume button: the stamp used now, or the verdict that stopped it."""

    check: CounterCheck
    consumption: Consumption | None


def consume_scanned(
    session: Session, settings: Settings, scanned: str, *, consulate: str, actor: str
) -> CounterUse:
    """Check the same scan again, then use the stamp exactly once (the stamp service keeps it to once; a
    counter that lost the race is told where and when the stamp was used)."""
    check = check_scan(session, settings, scanned, consulate=consulate)
    if not check.consumable or check.number is None:
        return CounterUse(check, None)
    try:
        done = consume_stamp(session, settings, check.number, consulate=consulate, actor=actor)
    except (StampUnusableError, StampExpiredError, OtherConsulateError, StampNotFoundError):
        return CounterUse(check_scan(session, settings, scanned, consulate=consulate), None)
    return CounterUse(check, done)
