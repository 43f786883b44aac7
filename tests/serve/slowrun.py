"""``docmill`` with a ``slow`` classifier, so a browser can watch a run in progress.

``python slowrun.py run SOURCE -c slow:0.05 …`` is ``docmill run`` whose classifier sleeps the given
seconds per document, then classifies by keywords. Test-only: the directory must be on PYTHONPATH.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

from docmill.document import Document
from docmill.processors.base import Processor
from docmill.processors.registry import CLASSIFIERS, build_classifier


class SlowClassifier(Processor):
    """Keywords classification after a fixed delay per document."""

    name = "slow-keywords"

    def __init__(self, delay: float, inner: Processor) -> None:
        self.delay = delay
        self.inner = inner

    def setup(self) -> None:
        self.inner.setup()

    def process(self, doc: Document) -> Document:
        time.sleep(self.delay)
        return self.inner.process(doc)

    def config(self) -> Mapping[str, Any]:
        return {"delay": self.delay, "inner": self.inner.fingerprint()}


def from_spec(arg: str | None, settings: Mapping[str, Any]) -> Processor:
    return SlowClassifier(float(arg or 0.05), build_classifier("keywords", settings))


if __name__ == "__main__":
    CLASSIFIERS["slow"] = "slowrun:from_spec"
    from docmill.cli.main import main

    raise SystemExit(main(sys.argv[1:]))
