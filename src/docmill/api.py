"""The one-import Python API: ``docmill.run(...)`` and ``docmill.open_journal(...)``.

::

    import docmill

    result = docmill.run("examples/corpus", strategy="threads", workers=2, db="docmill.db")
    print(result.stats.by_status)
    df = result.to_pandas()            # one row per document, the columns of `docmill export`

    with docmill.open_journal("docmill.db") as journal:
        print(journal.summary().by_status, len(journal.failures()))

``run`` does what ``docmill run`` does, with the settings of ``docmill.yaml`` as keywords.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from docmill.config import RunConfig
from docmill.reader import JournalReader, open_journal
from docmill.runner import RunResult, run_config


def run(
    source: str | os.PathLike[str] | None = None,
    *,
    classifier: str | Mapping[str, Any] | None = None,
    strategy: str | None = None,
    workers: int | None = None,
    db: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    **settings: Any,
) -> RunResult:
    """Classify every document under ``source``, recording each in the journal ``db``; resumes.

    ``settings`` are the keys of ``docmill.yaml`` (``RunConfig``'s fields: ``classifier``,
    ``strategy``, ``workers``, ``db``, ``timeout``, ``llm={"rpm": 500}``, …), checked the same way:
    an unknown or invalid one is a ``ConfigError`` before any work. ``config`` names a
    ``docmill.yaml`` to start from (keywords override it); none is read unless it is given.
    Progress is not shown unless asked (``progress="log"``, ``"rich"`` or ``"auto"``).

    Returns a ``RunResult``: ``.stats``, ``.strategy``, ``.stopped`` (``"interrupted"`` or
    ``"max-cost"`` when the run ended early), ``.rows()``, ``.to_pandas()``, ``.to_arrow()``.
    """
    from docmill.progress import make_reporter

    named = {"classifier": classifier, "strategy": strategy, "workers": workers, "db": db}
    settings = _given(source, {**named, **settings})
    loaded = (
        RunConfig.load(os.fspath(config), **settings)
        if config is not None
        else RunConfig.from_mapping(settings)
    )
    return run_config(loaded, reporter=make_reporter(loaded.progress))


def _given(source: str | os.PathLike[str] | None, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings given (a ``None`` keyword is the default; paths as strings), quiet by default."""
    if source is not None:
        settings = {**settings, "source": source}
    given = {key: _plain(value) for key, value in settings.items() if value is not None}
    given.setdefault("progress", "none")
    return given


def _plain(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


__all__ = ["JournalReader", "RunResult", "open_journal", "run"]
