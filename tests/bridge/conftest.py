from __future__ import annotations

import pytest

from generator.bridge.privacy import new_key_pair


@pytest.fixture(scope="session")
def key_pair() -> tuple[str, str]:
    """An age (identity, recipient) pair for sealing contacts in tests."""
    return new_key_pair()
