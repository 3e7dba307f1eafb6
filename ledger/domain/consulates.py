"""Consulates: where fees are paid and stamps are used."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.domain.labels import Labels

CONSULATE_CODE = re.compile(r"[A-Z]{2}-[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class Consulate:
    code: str  # "FR-PAR": the stamp's audience
    name: Labels
    country: str  # ISO 3166-1 alpha-2
    currency: str  # ISO 4217: every fee at this consulate is paid in it
    timezone: str  # IANA zone of the consulate's business day
