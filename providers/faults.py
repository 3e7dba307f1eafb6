"""Faults the local simulators and fake gateways inject, per request (a header) or per order."""

from __future__ import annotations

from enum import StrEnum


class Fault(StrEnum):
    DECLINE = "decline"  # the card is refused (checkout approval or terminal sale)
    TIMEOUT_AFTER_CHARGE = "timeout-after-charge"  # the operation is done, the answer comes too late
    ERROR_AFTER_CHARGE = "error-after-charge"  # the operation is done, the answer is a 500
    LOST_CALLBACK = "lost-callback"  # webhooks are signed and recorded but never delivered
    DUPLICATE_WEBHOOKS = "duplicate-webhooks"  # every webhook or callback is delivered three times
    REORDERED_WEBHOOKS = "reordered-webhooks"  # webhooks are held and delivered newest first


def parse_faults(text: str | None) -> frozenset[Fault]:
    """`"decline, lost-callback"` -> {DECLINE, LOST_CALLBACK}; an unknown name is an error naming it."""
    if not text:
        return frozenset()
    faults = set()
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        try:
            faults.add(Fault(name))
        except ValueError:
            known = ", ".join(f.value for f in Fault)
            raise ValueError(f"unknown sandbox fault {name!r} (known: {known})") from None
    return frozenset(faults)
