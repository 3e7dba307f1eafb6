"""Providers are found through entry points: a third-party distribution appears with no change to the core."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.money import Money
from providers.config import parse_providers_config
from providers.errors import ProviderConfigError, ProviderNotInstalledError
from providers.model import OutcomeKind, PaymentRequest, Redirect
from providers.registry import ENTRY_POINT_GROUP, InstalledProvider, ProviderRegistry, installed_providers

FIXTURE = Path(__file__).parent / "fixtures" / "acme_pay"
ACME = """
[variants.acme-online]
provider = "acme"
mode = "online"
base_url = "https://pay.acme.test"
consulates = ["*"]
currencies = ["EUR"]
secrets = { api_key = "ACME_KEY" }
"""


def _install_by_hand(target: Path) -> None:
    """What an installer leaves behind: the package and a .dist-info with the entry points."""
    shutil.copytree(FIXTURE / "acme_pay", target / "acme_pay")
    info = target / "etimbre_acme_pay-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: etimbre-acme-pay\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nacme = acme_pay:AcmePayProvider\n")


def _build_wheel(out: Path) -> Path:
    """A wheel of the fixture distribution, zipped by hand: no build backend or network needed."""
    info = "etimbre_acme_pay-1.0.0.dist-info"
    files = {
        "acme_pay/__init__.py": (FIXTURE / "acme_pay" / "__init__.py").read_bytes(),
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: etimbre-acme-pay\nVersion: 1.0.0\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[{ENTRY_POINT_GROUP}]\nacme = acme_pay:AcmePayProvider\n".encode(),
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = out / "etimbre_acme_pay-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


@pytest.fixture
def clean_modules() -> Iterator[None]:
    yield
    sys.modules.pop("acme_pay", None)


def test_the_built_in_providers_are_entry_points() -> None:
    found = installed_providers()
    assert {"sandbox", "cmi", "stripe"} <= set(found)
    assert found["stripe"].distribution == "etimbre-ledger"
    assert found["cmi"].load().name == "cmi"


def test_an_unknown_provider_is_refused_with_its_name() -> None:
    config = parse_providers_config(ACME, source="providers.toml")
    registry = ProviderRegistry(config, env={"ACME_KEY": "k"})
    with pytest.raises(ProviderNotInstalledError, match=r"variants\.acme-online\.provider: .*'acme'"):
        registry.get("acme-online")
    (status,) = registry.describe()
    assert not status.ready
    assert status.problem is not None
    assert "acme" in status.problem


@pytest.mark.anyio
@pytest.mark.usefixtures("clean_modules")
async def test_a_third_party_distribution_is_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_by_hand(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    await _use_acme()


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.usefixtures("clean_modules")
async def test_a_third_party_wheel_installed_with_pip_is_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "site"
    wheel = _build_wheel(tmp_path)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        "--target",
        str(target),
    ]
    # A blocking call is fine here: nothing else runs on this test's event loop.
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, cwd=tmp_path)  # noqa: ASYNC221
    assert (target / "etimbre_acme_pay-1.0.0.dist-info" / "entry_points.txt").exists()
    monkeypatch.syspath_prepend(str(target))
    await _use_acme()


async def _use_acme() -> None:
    found = installed_providers()["acme"]
    assert (found.distribution, found.version) == ("etimbre-acme-pay", "1.0.0")
    config = parse_providers_config(ACME, source="providers.toml")
    async with ProviderRegistry(config, env={"ACME_KEY": "k"}) as registry:
        (status,) = registry.describe()
        assert status.ready, status.problem
        provider = registry.get("acme-online")
        request = PaymentRequest(
            reference="A-1", amount=Money(1250, "EUR"), description="Visa", consulate="FR-PAR",
            return_url="https://etimbre.test/back",
        )  # fmt: skip
        result = await provider.create_payment(request, idempotency_key="key-1")
        assert result.outcome.kind is OutcomeKind.SUCCEEDED
        assert isinstance(result.next_action, Redirect)
        assert result.next_action.url.startswith("https://pay.acme.test/pay/A-1")


def test_a_plugin_that_is_not_a_provider_is_refused() -> None:
    broken = InstalledProvider("acme", "json:dumps", "etimbre-acme-pay", "1.0.0")
    with pytest.raises(ProviderConfigError, match=r"not a subclass of providers\.base\.Provider"):
        broken.load()
    missing = InstalledProvider("acme", "no_such_module:Thing", "etimbre-acme-pay", "1.0.0")
    with pytest.raises(ProviderConfigError, match="cannot be loaded"):
        missing.load()
    twice = InstalledProvider(
        "acme", "acme_pay:AcmePayProvider", "etimbre-acme-pay", "1.0.0", ("other-dist",)
    )
    with pytest.raises(ProviderConfigError, match="several distributions"):
        twice.load()
