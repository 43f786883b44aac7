"""The ``executor_name`` fixture: every registered strategy but celery (which needs a broker)."""

from __future__ import annotations

import pytest
from contract_kit import STRATEGIES


@pytest.fixture(params=STRATEGIES)
def executor_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name
