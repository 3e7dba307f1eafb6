"""The pages' templates, static files and catalogs are package data: they install with the project."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "ledger" / "web"


def test_every_page_file_is_declared_package_data() -> None:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        declared = tomllib.load(handle)["tool"]["setuptools"]["package-data"]
    # setuptools expands each pattern as a glob relative to the package (a `*` never crosses a folder)
    shipped = {path for pattern in declared.get("ledger.web", []) for path in WEB.glob(pattern)}
    files = {
        path
        for folder in ("templates", "static", "i18n")
        for path in (WEB / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert files
    missing = sorted(path.relative_to(WEB).as_posix() for path in files - shipped)
    assert missing == [], f"add these to [tool.setuptools.package-data] ledger.web: {missing}"
