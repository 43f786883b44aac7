"""``RunConfig``: everything a run needs, as one frozen, validated value.

Built from ``docmill.yaml`` (``RunConfig.load(path, **overrides)``), CLI flags overriding the file,
or directly in Python. Every problem is a one-line ``ConfigError`` (the CLI exits with code 2)::

    source: ./inbox               # what `docmill run` processes when no path is given
    strategy: processes           # sequential | threads | processes | asyncio | … | auto
    workers: 2
    strategy_options: {}          # the strategy's own options (processes: start_method, chunksize; …)
    broker: redis://host:6379/0   # celery strategy: the broker (default $DOCMILL_BROKER)
    queue: docmill                # celery strategy: the queue its workers serve (default $DOCMILL_QUEUE)
    parallelization: {max_processes: null, max_threads_per_process: 4}
    classifier: keywords          # or model:man.model, llm; or {spec: llm, <settings>…}
    labels: labels.yaml
    db: docmill.db
    timeout: 60                   # seconds per document
    max_bytes: 104857600
    include: ["*.pdf"]
    exclude: ["drafts/*"]
    follow_links: false           # follow folder symlinks leading out of the source folder
    retry: {max_attempts: 3, initial: 1.0, maximum: 30.0}
    commit_every: 500             # journal batch: rows …
    commit_seconds: 1.0           # … or seconds, whichever comes first
    quarantine_after: 3
    llm: {base_url: http://127.0.0.1:8000/v1, model: m, rpm: 500, tpm: 200000, max_cost: 5.0}
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from docmill.errors import ConfigError, DocmillError
from docmill.retry import RetryPolicy

_PROGRESS = ("auto", "rich", "log", "none")
_SYNC = ("OFF", "NORMAL", "FULL", "EXTRA")
DEFAULT_CONFIG = "docmill.yaml"


@dataclass(frozen=True, slots=True, kw_only=True)
class Parallelization:
    """Sizing of the nested strategies: processes, and threads (or tasks) inside each."""

    max_processes: int | None = None  # None = one per usable CPU core
    max_threads_per_process: int = 4

    def __post_init__(self) -> None:
        if self.max_processes is not None and self.max_processes < 1:
            raise ConfigError(f"parallelization.max_processes must be >= 1, got {self.max_processes}")
        if self.max_threads_per_process < 1:
            raise ConfigError(
                f"parallelization.max_threads_per_process must be >= 1, got {self.max_threads_per_process}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """The settings of one ``docmill run``; see the module docstring for the YAML form."""

    source: str | None = None
    strategy: str = ""  # "" = the default: auto when available, else processes
    workers: int | None = None
    strategy_options: Mapping[str, Any] = field(default_factory=dict)  # checked against strategy's Options
    broker: str | None = None  # the celery strategy's broker URL; other strategies ignore it
    queue: str | None = None  # the celery strategy's queue name; other strategies ignore it
    parallelization: Parallelization = field(default_factory=Parallelization)
    classifier: str = "keywords"
    classifier_options: Mapping[str, Any] = field(default_factory=dict)
    labels: str | None = None
    db: str = "docmill.db"
    synchronous: str = "NORMAL"
    timeout: float | None = None
    max_bytes: int | None = 100 * 1024 * 1024
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    follow_links: bool = False  # follow folder symlinks that leave the source folder
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=3, initial=0.5, maximum=30.0))
    commit_every: int = 500
    commit_seconds: float = 1.0
    quarantine_after: int = 3
    retry_failed: bool = False
    fresh: bool = False
    max_cost: float | None = None
    llm: Mapping[str, Any] = field(default_factory=dict)
    extract: Mapping[str, Any] = field(default_factory=dict)
    progress: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", self.strategy or default_strategy())
        _check_strategy(self.strategy)
        _check_strategy_options(self.strategy, self.strategy_options)
        _positive("workers", self.workers)
        _positive("timeout", self.timeout)
        _positive("max_bytes", self.max_bytes)
        _positive("commit_every", self.commit_every)
        _positive("commit_seconds", self.commit_seconds)
        _positive("quarantine_after", self.quarantine_after)
        if self.max_cost is not None and self.max_cost < 0:
            raise ConfigError(f"max_cost must be >= 0, got {self.max_cost}")
        if self.progress not in _PROGRESS:
            raise ConfigError(f"progress must be one of {', '.join(_PROGRESS)}, got {self.progress!r}")
        for name in ("broker", "queue"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
        if self.synchronous.upper() not in _SYNC:
            raise ConfigError(f"synchronous must be one of {', '.join(_SYNC)}, got {self.synchronous!r}")

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> RunConfig:
        """Read ``path`` (default: ./docmill.yaml when present), then apply non-None ``overrides``."""
        data = _read_yaml(path)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RunConfig:
        """Build from plain data (parsed YAML): nested sections become their value objects."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(data)
        _split_classifier(values)
        try:
            _coerce(values)
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"bad configuration: {exc}") from exc

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    @property
    def cost_limit(self) -> float | None:
        """``max_cost``, or the ``llm:`` section's ``max_cost``."""
        if self.max_cost is not None:
            return self.max_cost
        value = self.llm.get("max_cost")
        return None if value is None else float(value)

    def classifier_settings(self) -> dict[str, Any]:
        """The ``settings`` mapping handed to the classifier factory."""
        settings: dict[str, Any] = {**self.llm, **self.classifier_options}
        if self.labels is not None:
            settings["labels"] = self.labels
        settings.setdefault("cache", str(Path(self.db).with_name("docmill-cache.db")))
        return settings

    def public(self) -> dict[str, Any]:
        """JSON-ready settings for the run record (secrets are never in it: keys stay in env vars)."""
        data = dataclasses.asdict(self)
        data["retry"] = {k: v for k, v in data["retry"].items() if k != "retry_on"}
        data["db"] = _redact("db", data["db"])
        data["broker"] = _redact("broker", data["broker"])
        for section in ("llm", "classifier_options", "strategy_options"):
            data[section] = {k: _redact(k, v) for k, v in data[section].items()}
        return data


_SECRET = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)


def _redact(name: str, value: Any) -> Any:
    """Secrets given inline never reach the journal; ``api_key_env`` (a variable's name) is kept."""
    if _SECRET.search(name) and not name.endswith("_env") and value is not None:
        return "***"
    if "://" in str(value) and "@" in str(value):  # a URL with credentials: keep the host only
        return re.sub(r"//[^/@]*@", "//***@", str(value))
    return value


def default_strategy() -> str:
    """``auto`` when it is registered and imports, else ``processes``."""
    from docmill.executors import executor_class

    try:
        executor_class("auto")
    except (ImportError, DocmillError, AttributeError):
        return "processes"
    return "auto"


def _check_strategy(name: str) -> None:
    from docmill.errors import UnknownExecutorError
    from docmill.executors import ALIASES, EXECUTORS

    if name not in EXECUTORS and name not in ALIASES:
        raise UnknownExecutorError(name, list(EXECUTORS))


def _check_strategy_options(name: str, options: Any) -> None:
    """Refuse, before any work, an option the strategy does not take or a value it cannot use."""
    from docmill.executors import executor_class

    try:
        kind = executor_class(name)
    except ImportError:
        return  # its missing dependency is reported when the strategy is built
    kind.options_from(options, "strategy_options")


def _positive(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if value <= 0:
        raise ConfigError(f"{name} must be > 0, got {value}")


def _read_yaml(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        if not Path(DEFAULT_CONFIG).is_file():
            return {}
        path = DEFAULT_CONFIG
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"bad YAML in {path}{at}: {getattr(exc, 'problem', None) or exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _split_classifier(values: dict[str, Any]) -> None:
    spec = values.get("classifier")
    if isinstance(spec, Mapping):
        options = dict(spec)
        values["classifier"] = str(options.pop("spec", options.pop("name", "keywords")))
        values["classifier_options"] = {**options, **dict(values.get("classifier_options") or {})}


def _coerce(values: dict[str, Any]) -> None:
    for key in ("include", "exclude"):
        if key in values:
            values[key] = _patterns(key, values[key])
    for key, kind in (("parallelization", Parallelization), ("retry", RetryPolicy)):
        section = values.get(key)
        if isinstance(section, Mapping):
            values[key] = _section(key, kind, section)
    for key in ("llm", "extract", "classifier_options", "strategy_options"):
        if key in values and not isinstance(values[key], Mapping):
            raise ConfigError(f"{key} must be a mapping, got {values[key]!r}")


def _patterns(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{key} must be a glob or a list of globs, got {value!r}")


def _section(key: str, kind: Any, section: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(kind)} - {"retry_on"}
    unknown = sorted(set(section) - names)
    if unknown:
        raise ConfigError(f"unknown {key} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return kind(**section)
