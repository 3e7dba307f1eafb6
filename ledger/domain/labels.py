"""Text in the three languages the service speaks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Language = Literal["fr", "ar", "en"]
LANGUAGES: tuple[Language, ...] = ("fr", "ar", "en")


@dataclass(frozen=True, slots=True)
class Labels:
    fr: str
    ar: str
    en: str

    def get(self, language: str) -> str:
        return {"fr": self.fr, "ar": self.ar, "en": self.en}.get(language, self.fr)
