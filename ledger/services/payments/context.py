"""What every payment use case works with: the database, the settings, the providers and the stamp keys."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ledger.db.engine import Database
from ledger.services.issuance import SignerSource
from ledger.settings import Settings
from providers.config import ProvidersConfig, load_providers_config
from providers.registry import ProviderRegistry


@dataclass(frozen=True, slots=True)
class Payments:
    """The payment service's dependencies; build one per process (the registry holds HTTP clients)."""

    database: Database
    settings: Settings
    registry: ProviderRegistry
    keys: SignerSource

    @property
    def public_url(self) -> str:
        return self.settings.service.server.public_url.rstrip("/")

    def notify_url(self, variant: str) -> str:
        """Where a variant's provider posts its webhooks and callbacks."""
        return f"{self.public_url}/webhooks/{variant}"


def providers_file(settings: Settings) -> Path:
    configured = settings.service.payments.providers_file
    return Path(configured) if configured else settings.config_dir / "providers.toml"


def load_providers(settings: Settings) -> ProvidersConfig:
    return load_providers_config(providers_file(settings))


# The sandbox simulator's own defaults: not secrets (the simulator moves no money), so that the embedded
# default pays end to end with no set-up. Production never uses them; the environment always wins.
SANDBOX_DEVELOPMENT_ENV = {
    "ETIMBRE_SANDBOX_API_KEY": "sandbox-key",
    "ETIMBRE_SANDBOX_WEBHOOK_SECRET": "sandbox-webhook-secret",
}


def provider_environment(settings: Settings) -> Mapping[str, str]:
    """Where provider secrets come from: the environment (plus the sandbox's defaults in development)."""
    if settings.production:
        return os.environ
    return {**SANDBOX_DEVELOPMENT_ENV, **os.environ}
