"""The providers file: a typed loader whose errors name the file, the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.config import load_providers_config, parse_providers_config, resolve_secrets
from providers.errors import ProviderConfigError
from providers.model import Mode
from providers.registry import ProviderRegistry

GOOD = """
[variants.stripe-online]
provider = "stripe"
mode = "online"
base_url = "https://api.stripe.com/"
consulates = ["FR-PAR", "FR-MRS"]
currencies = ["EUR"]
secrets = { api_key = "STRIPE_KEY", webhook_secrets = ["STRIPE_HOOK", "STRIPE_HOOK_OLD"] }
timeouts = { read = 12.5 }
"""


def test_the_shipped_file_loads() -> None:
    config = load_providers_config(Path(__file__).parents[2] / "config" / "providers.toml")
    assert {"sandbox-online", "sandbox-counter", "cmi-online", "stripe-online"} <= set(config.variants)
    assert config.variant("sandbox-counter").mode is Mode.TERMINAL
    assert config.variant("cmi-online").currencies == {"MAD"}


def test_a_good_variant_is_typed() -> None:
    variant = parse_providers_config(GOOD, source="p.toml").variant("stripe-online")
    assert variant.base_url == "https://api.stripe.com"
    assert variant.timeouts.read == 12.5
    assert variant.secrets["webhook_secrets"] == ("STRIPE_HOOK", "STRIPE_HOOK_OLD")
    assert variant.serves(consulate="FR-PAR", currency="EUR")
    assert not variant.serves(consulate="ES-MAD", currency="EUR")
    assert not variant.serves(consulate="FR-PAR", currency="USD")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('mode = "online"', 'mode = "kiosk"'),
            r"p\.toml: variants\.stripe-online\.mode: Invalid enum value 'kiosk'",
        ),
        (
            ('provider = "stripe"', 'provider = "stripe"\ncolour = "blue"'),
            r"variants\.stripe-online: .*unknown field `colour`",
        ),
        (('provider = "stripe"\n', ""), r"variants\.stripe-online: Object missing required field `provider`"),
        (('currencies = ["EUR"]', 'currencies = ["EURO"]'), r"variants\.stripe-online\.currencies: .*'EURO'"),
        (
            ('currencies = ["EUR"]', "currencies = []"),
            r"variants\.stripe-online\.currencies: list at least one",
        ),
        (
            ('base_url = "https://api.stripe.com/"', 'base_url = "api.stripe.com"'),
            r"\.base_url: must be an absolute",
        ),
        (
            ('"STRIPE_KEY"', '"sk_live_51Habc"'),
            r"secrets\.api_key: must be the NAME of an environment variable",
        ),
        (("read = 12.5", "read = 0"), r"variants\.stripe-online\.timeouts\.read: must be a positive"),
        (("read = 12.5", 'read = "fast"'), r"timeouts\.read: Expected `float`, got `str`"),
        (
            ("[variants.stripe-online]", "[variants.Stripe_Online]"),
            r"variants\.Stripe_Online: a variant name",
        ),
        (("[variants.stripe-online]", "[variants.stripe-online\n"), r"p\.toml: not valid TOML"),
    ],
)
def test_a_bad_file_says_where_and_what(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ProviderConfigError, match=message):
        parse_providers_config(GOOD.replace(*change), source="p.toml")


def test_secrets_come_from_the_environment_only() -> None:
    variant = parse_providers_config(GOOD, source="p.toml").variant("stripe-online")
    required = {"api_key": "Stripe key", "webhook_secrets": "webhook secret"}
    with pytest.raises(
        ProviderConfigError, match=r"secrets\.api_key: environment variable STRIPE_KEY is not set"
    ):
        resolve_secrets(variant, required, {"STRIPE_HOOK": "h"})
    secrets = resolve_secrets(variant, required, {"STRIPE_KEY": "k", "STRIPE_HOOK": "h1"})
    assert secrets.all("webhook_secrets") == ("h1",)
    env = {"STRIPE_KEY": "sk_9f3e", "STRIPE_HOOK": "h1", "STRIPE_HOOK_OLD": "h0"}
    rotated = resolve_secrets(variant, required, env)
    assert rotated.all("webhook_secrets") == ("h1", "h0")
    assert "sk_9f3e" not in repr(rotated)
    with pytest.raises(ProviderConfigError, match=r"secrets\.api_password: missing"):
        resolve_secrets(
            variant, {**required, "api_password": "password"}, {"STRIPE_KEY": "k", "STRIPE_HOOK": "h"}
        )
    with pytest.raises(ProviderConfigError, match=r"secrets\.api_key: unknown secret"):
        resolve_secrets(variant, {"webhook_secrets": "w"}, {"STRIPE_HOOK": "h"})


def test_a_missing_file_and_an_unknown_variant_are_named(tmp_path: Path) -> None:
    with pytest.raises(ProviderConfigError, match=r"nothing\.toml: cannot read"):
        load_providers_config(tmp_path / "nothing.toml")
    config = parse_providers_config(GOOD, source="p.toml")
    with pytest.raises(ProviderConfigError, match=r"no variant named 'cmi' \(configured: stripe-online\)"):
        config.variant("cmi")


def test_the_registry_lists_variants_and_what_they_lack() -> None:
    config = parse_providers_config(GOOD, source="p.toml")
    registry = ProviderRegistry(config, env={"STRIPE_KEY": "k"})
    (status,) = registry.describe()
    assert (status.variant, status.provider, status.distribution) == (
        "stripe-online",
        "stripe",
        "etimbre-ledger",
    )
    assert status.problem is not None
    assert "STRIPE_HOOK is not set" in status.problem
    ready = ProviderRegistry(config, env={"STRIPE_KEY": "k", "STRIPE_HOOK": "h"})
    assert ready.describe()[0].ready
    assert [v.name for v in ready.variants_serving(mode=Mode.ONLINE, consulate="FR-MRS", currency="EUR")] == [
        "stripe-online"
    ]
    assert ready.variants_serving(mode=Mode.TERMINAL, consulate="FR-MRS", currency="EUR") == []
