"""From a ``RunConfig`` to the objects a run needs: source, pipeline, journal, strategy."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from docmill.config import RunConfig
from docmill.errors import ConfigError
from docmill.executors import executor_class
from docmill.executors.base import Executor
from docmill.journal import open_journal
from docmill.journal.base import Journal
from docmill.pipeline import Pipeline
from docmill.sources.base import Source

_JSONL = (".jsonl", ".ndjson")


def build_source(config: RunConfig) -> Source:
    """A directory → DirectorySource; ``*.jsonl`` → JsonlSource; ``@paths.txt`` → FileListSource;
    ``s3://bucket/prefix`` → S3Source."""
    target = config.source
    if not target:
        raise ConfigError(
            "no source given: pass a folder (docmill run FOLDER) or set source: in docmill.yaml"
        )
    if target.startswith("@"):
        from docmill.sources.files import FileListSource

        listed = FileListSource(target[1:])
        listed.max_bytes = config.max_bytes
        listed.check()
        return listed
    if target.startswith("s3://"):
        return _s3_source(config)
    path = Path(target)
    if path.is_file() and path.suffix.lower() in _JSONL:
        from docmill.sources.jsonl import JsonlSource

        return JsonlSource(path, max_bytes=config.max_bytes)
    if not path.is_dir():
        what = "not a folder or a .jsonl file" if path.exists() else "no such folder"
        raise ConfigError(f"{what}: {target}")
    from docmill.sources.files import DirectorySource

    exclude = config.exclude + _own_files(config, path)
    return DirectorySource(
        path,
        include=config.include,
        exclude=exclude,
        max_bytes=config.max_bytes,
        follow_links=config.follow_links,
    )


def _s3_source(config: RunConfig) -> Source:
    """``s3://bucket/prefix``, checked (bucket, credentials) before any work."""
    from docmill.sources.s3 import S3Source

    source = S3Source(
        config.source or "", include=config.include, exclude=config.exclude, max_bytes=config.max_bytes
    )
    source.check()
    return source


def _own_files(config: RunConfig, root: Path) -> tuple[str, ...]:
    """docmill's own files inside the source folder (journal, cache, labels, config): never documents."""
    db = Path(config.db)
    candidates = [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))]
    candidates += [db.with_name("docmill-cache.db"), Path("docmill.yaml")]
    if config.labels:
        candidates.append(Path(config.labels))
    real_root = root.resolve()
    inside = []
    for candidate in candidates:
        try:
            inside.append(candidate.resolve().relative_to(real_root).as_posix())
        except ValueError:
            continue
    return tuple(inside)


def default_labels(config: RunConfig) -> RunConfig:
    """Use ``<source>/labels.yaml`` when no labels file is given and the source folder has one."""
    if config.labels is not None or not config.source or config.source.startswith("@"):
        return config
    candidate = Path(config.source) / "labels.yaml"
    return config.replace(labels=str(candidate)) if candidate.is_file() else config


def build_pipeline(config: RunConfig) -> Pipeline:
    """``Pipeline(ExtractText(**extract), <classifier>)``; a labels file declaring tasks gives the
    steps answering them instead of the classifier (``docmill.processors.tasks``)."""
    from docmill.model.tasks import is_tasks_file
    from docmill.processors.extract import ExtractText
    from docmill.processors.registry import build_classifier

    extract = ExtractText.from_options(config.extract)
    if config.classifier != "none" and is_tasks_file(config.labels):
        from docmill.processors.tasks import task_steps

        steps = task_steps(config, str(config.labels))
    else:
        steps = [build_classifier(config.classifier, config.classifier_settings())]
    if config.steps:  # your own steps, after the classifier's, sharing its LLM limits
        from docmill.processors.steps import build_steps, run_llm

        steps += build_steps(config, run_llm(config, steps))
    return Pipeline(extract, *steps)


def build_journal(config: RunConfig) -> Journal:
    options: dict[str, Any] = {
        "quarantine_after": config.quarantine_after,
        "reconnect_seconds": config.journal.reconnect_seconds,
    }
    if "://" not in config.db:
        options["synchronous"] = config.synchronous
        parent = os.path.dirname(os.path.abspath(config.db))
        if not os.path.isdir(parent):
            raise ConfigError(f"folder of the journal does not exist: {parent}")
    return open_journal(config.db, **options)


def build_executor(config: RunConfig) -> Executor:
    """The strategy ``config`` names, with its typed ``Options`` (checked when the config was made)."""
    kind = executor_class(config.strategy)
    options = kind.options_from(config.strategy_options, "strategy_options")
    shape: dict[str, Any] = {}
    if kind.distributed:  # set here, else in strategy_options, else $DOCMILL_BROKER/QUEUE
        shape.update({k: v for k, v in (("broker", config.broker), ("queue", config.queue)) if v})
    if kind.nested:  # the parallelization: section, unless strategy_options says otherwise
        sizing = dataclasses.asdict(config.parallelization)
        shape.update({k: v for k, v in sizing.items() if k not in config.strategy_options})
    return kind(config.workers, options=dataclasses.replace(options, **shape))
