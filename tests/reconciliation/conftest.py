"""Fixtures for the importer tests: the shipped import profiles."""

from __future__ import annotations

import pytest

from reconciliation.importers import ProfileSet, load_profiles


@pytest.fixture(scope="session")
def profiles() -> ProfileSet:
    return load_profiles()
