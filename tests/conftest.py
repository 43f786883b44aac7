"""Shared fixtures. Tests read ../shared/data only through ``shared_data``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["s3_server"]  # s3_endpoint / s3: a moto S3 server on loopback

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def _shared_data_dir() -> Path:
    env = os.environ.get("DOCMILL_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared test corpus (manpages/, bad-inputs/ and their CSVs); skips when absent."""
    path = _shared_data_dir()
    if not (path / "manpages").is_dir():
        pytest.skip(f"shared test data not found at {path} (set DOCMILL_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def manpages(shared_data: Path) -> Path:
    return shared_data / "manpages"


@pytest.fixture(scope="session")
def manpage_labels(shared_data: Path) -> Path:
    return shared_data / "manpages-labels.csv"


@pytest.fixture(scope="session")
def bad_inputs(shared_data: Path) -> Path:
    return shared_data / "bad-inputs"
