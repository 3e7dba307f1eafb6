"""Discovery of installed providers (entry points `etimbre.providers`) and one instance per variant."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import TracebackType

import httpx

from providers.base import Clock, Provider, ProviderContext, utc_now
from providers.config import ProvidersConfig, VariantConfig, load_providers_config, resolve_secrets
from providers.errors import ProviderConfigError, ProviderNotInstalledError
from providers.model import Mode

ENTRY_POINT_GROUP = "etimbre.providers"
USER_AGENT = "etimbre-ledger"


@dataclass(frozen=True, slots=True)
class InstalledProvider:
    """A provider offered by an installed distribution, not loaded yet."""

    name: str
    target: str  # "package.module:Class"
    distribution: str | None
    version: str | None
    also_offered_by: tuple[str, ...] = ()  # other distributions claiming the same name

    def load(self) -> type[Provider]:
        if self.also_offered_by:
            raise ProviderConfigError(
                f"provider {self.name!r} is offered by several distributions "
                f"({', '.join((self.distribution or '?', *self.also_offered_by))}); uninstall all but one"
            )
        try:
            loaded = EntryPoint(self.name, self.target, ENTRY_POINT_GROUP).load()
        except Exception as exc:
            raise ProviderConfigError(
                f"provider {self.name!r} ({self.target}, from {self.distribution}) cannot be loaded: {exc}"
            ) from exc
        if not (isinstance(loaded, type) and issubclass(loaded, Provider)):
            raise ProviderConfigError(
                f"entry point {self.name!r} = {self.target!r} is not a subclass of providers.base.Provider"
            )
        if loaded.name != self.name:
            raise ProviderConfigError(
                f"entry point {self.name!r} loads {loaded.__qualname__} whose name is {loaded.name!r}"
            )
        return loaded


def installed_providers() -> dict[str, InstalledProvider]:
    """Every provider advertised in the `etimbre.providers` entry-point group on the current path."""
    found: dict[str, InstalledProvider] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        dist = point.dist
        dist_name = dist.metadata["Name"] if dist is not None else None
        version = dist.version if dist is not None else None
        seen = found.get(point.name)
        if seen is None:
            found[point.name] = InstalledProvider(point.name, point.value, dist_name, version)
        elif seen.target != point.value:
            found[point.name] = InstalledProvider(
                seen.name,
                seen.target,
                seen.distribution,
                seen.version,
                (*seen.also_offered_by, dist_name or point.value),
            )
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantStatus:
    """One line of `etimbre providers list`."""

    variant: str
    provider: str
    mode: Mode
    enabled: bool
    currencies: tuple[str, ...]
    consulates: tuple[str, ...] | None  # None: all
    distribution: str | None
    version: str | None
    problem: str | None  # why the variant cannot be used now, or None when it is ready

    @property
    def ready(self) -> bool:
        return self.enabled and self.problem is None


class ProviderRegistry:
    """Builds and keeps one provider instance per configured variant. Close it with `aclose()`."""

    def __init__(
        self,
        config: ProvidersConfig,
        *,
        env: Mapping[str, str] | None = None,
        installed: Mapping[str, InstalledProvider] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.config = config
        self._env = os.environ if env is None else env
        self._installed = dict(installed_providers() if installed is None else installed)
        self._transport = transport
        self._clock = clock
        self._instances: dict[str, Provider] = {}

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utc_now,
    ) -> ProviderRegistry:
        return cls(load_providers_config(path), env=env, transport=transport, clock=clock)

    @property
    def installed(self) -> Mapping[str, InstalledProvider]:
        return self._installed

    def provider_class(self, variant: VariantConfig) -> type[Provider]:
        found = self._installed.get(variant.provider)
        if found is None:
            known = ", ".join(sorted(self._installed)) or "none"
            raise ProviderNotInstalledError(
                f"{variant.where('provider')}: no installed distribution offers provider "
                f"{variant.provider!r} (installed: {known})"
            )
        cls = found.load()
        if variant.mode not in cls.modes:
            modes = ", ".join(sorted(cls.modes))
            raise ProviderConfigError(
                f"{variant.where('mode')}: {variant.provider} supports {modes}, not {variant.mode}"
            )
        return cls

    def get(self, variant_name: str) -> Provider:
        """The provider instance for a variant, built on first use."""
        instance = self._instances.get(variant_name)
        if instance is None:
            instance = self._instances[variant_name] = self._build(self.config.variant(variant_name))
        return instance

    def variants_serving(self, *, mode: Mode, consulate: str, currency: str) -> list[VariantConfig]:
        """Enabled variants that take `currency` for `consulate` in `mode`, by name."""
        return [
            v
            for _, v in sorted(self.config.variants.items())
            if v.mode is mode and v.serves(consulate=consulate, currency=currency)
        ]

    def describe(self) -> list[VariantStatus]:
        """Every configured variant with what is installed and what is missing, for operators."""
        statuses = []
        for name, variant in sorted(self.config.variants.items()):
            found = self._installed.get(variant.provider)
            problem = None
            try:
                cls = self.provider_class(variant)
                resolve_secrets(variant, cls.required_secrets, self._env, cls.optional_secrets)
            except ProviderConfigError as exc:
                problem = str(exc)
            statuses.append(
                VariantStatus(
                    variant=name,
                    provider=variant.provider,
                    mode=variant.mode,
                    enabled=variant.enabled,
                    currencies=tuple(sorted(variant.currencies)),
                    consulates=None if variant.consulates is None else tuple(sorted(variant.consulates)),
                    distribution=found.distribution if found else None,
                    version=found.version if found else None,
                    problem=problem,
                )
            )
        return statuses

    def _build(self, variant: VariantConfig) -> Provider:
        if not variant.enabled:
            raise ProviderConfigError(f"{variant.where('enabled')}: the variant is disabled")
        cls = self.provider_class(variant)
        secrets = resolve_secrets(variant, cls.required_secrets, self._env, cls.optional_secrets)
        http = httpx.AsyncClient(
            base_url=variant.base_url,
            timeout=variant.timeouts.as_httpx(),
            transport=self._transport,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )
        # A provider refusing its options raises here; the client has opened no connection yet.
        return cls(ProviderContext(variant=variant, secrets=secrets, http=http, clock=self._clock))

    async def aclose(self) -> None:
        instances, self._instances = list(self._instances.values()), {}
        for instance in instances:
            await instance.aclose()

    async def __aenter__(self) -> ProviderRegistry:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
