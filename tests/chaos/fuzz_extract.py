"""``python fuzz_extract.py FORMAT SEED SECONDS``: coverage-guided fuzzing of ExtractText on one format.

atheris mutates ``SEED`` (a real document of that format) for ``SECONDS`` seconds, with docmill's
own code instrumented for coverage. A finding is any exception outside docmill's error tree, an
input that runs past ``--timeout`` seconds (a hang), or memory past ``--rss-limit-mb``; atheris
then exits non-zero and writes the input as ``crash-*``/``timeout-*``/``oom-*`` in the
working directory.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

atheris: Any = importlib.import_module("atheris")  # no type stubs, and not a dependency of docmill

with atheris.instrument_imports(include=["docmill"]):
    from docmill.document import Document, DocumentRef, sha256_bytes
    from docmill.errors import DocmillError
    from docmill.processors.extract import ExtractText

EXTRACT = ExtractText(deadline=5.0)
NAME = "fuzz.txt"


def target(data: bytes) -> None:
    ref = DocumentRef(id=NAME, uri=f"file:///{NAME}", size=len(data))
    try:
        EXTRACT.process(Document(ref=ref, sha256=sha256_bytes(data), content=data))
    except DocmillError:
        pass  # a refused or corrupt document is an answer, not a finding


def main() -> None:
    global NAME
    kind, seed, seconds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    NAME = f"fuzz.{kind}"
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{kind}-"))
    (corpus / seed.name).write_bytes(seed.read_bytes())
    argv = [sys.argv[0], str(corpus), f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=1024"]
    atheris.Setup(argv + ["-print_final_stats=1"], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
