"""Coverage-guided fuzzing (atheris) of ExtractText, one format at a time, seeded by a real document.

Each format runs ``DOCMILL_FUZZ_SECONDS`` seconds (default 60; the issue's form is 600) in a
subprocess (tests/chaos/fuzz_extract.py). The verdict: no exception outside docmill's error tree,
no input past the 10 s per-input timeout, memory under 1 GiB. Needs ``pip install atheris``;
skips in one line without it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(3600)]

SECONDS = int(os.environ.get("DOCMILL_FUZZ_SECONDS", 60))
FUZZER = Path(__file__).with_name("fuzz_extract.py")
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.parametrize("kind", ["pdf", "docx", "html", "md", "txt"])
def test_fuzzing_an_extractor_finds_no_crash_hang_or_blowup(
    kind: str, manpages: Path, tmp_path: Path
) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    seed = sorted(manpages.rglob(f"*.{kind}"))[0]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, str(FUZZER), kind, str(seed), str(SECONDS)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SECONDS + 300,
    )  # fmt: skip
    stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", done.stderr))
    findings = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    print(
        f"fuzz {kind} {SECONDS} s: {stats.get('number_of_executed_units')} inputs "
        f"({stats.get('average_exec_per_sec')}/s), {stats.get('new_units_added')} new coverage units, "
        f"peak RSS {stats.get('peak_rss_mb')} MB, findings {findings or 0}"
    )
    assert done.returncode == 0 and not findings, done.stderr[-3000:]
