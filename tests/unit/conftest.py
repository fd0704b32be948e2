"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from feedbackflow.privacy import engine as privacy
from tests.helpers import params_settings


@pytest.fixture(scope="module")
def engine() -> privacy.PrivacyEngine:
    """The anonymiser as shipped (``params.yaml``'s defaults), built once per test module."""
    return privacy.build_engine(params_settings().anonymise)
