"""The chaos tier (``pytest -m chaos``, docs/chaos.md): faults injected at length.

Its tests reuse the distributed tests' helpers (Celery workers as subprocesses, a Redis server of
their own); worker subprocesses get that folder on PYTHONPATH too.
"""

from __future__ import annotations

import sys
from pathlib import Path

DISTRIBUTED = Path(__file__).resolve().parents[1] / "distributed"
if str(DISTRIBUTED) not in sys.path:
    sys.path.insert(0, str(DISTRIBUTED))
