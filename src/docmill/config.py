"""``RunConfig``: everything a run needs, as one frozen, validated value.

Built from ``docmill.yaml`` (``RunConfig.load(path, **overrides)``), CLI flags overriding the file,
or directly in Python. Every section is a typed value (``docmill.settings.from_mapping``): an unknown
key or an invalid value is a one-line ``SettingError`` naming the dotted key, before any work (the
CLI exits with code 2): ``llm.rmp: unknown setting; did you mean rpm?``::

    source: ./inbox               # what `docmill run` processes when no path is given
    strategy: processes           # sequential | threads | processes | asyncio | … | auto
    workers: 2
    strategy_options: {}          # the strategy's own options (processes: start_method, chunksize; …)
    broker: redis://host:6379/0   # celery strategy: the broker (default $DOCMILL_BROKER)
    queue: docmill                # celery strategy: the queue its workers serve (default $DOCMILL_QUEUE)
    parallelization: {max_processes: null, max_threads_per_process: 4}
    classifier: keywords          # or model:man.model, llm; or {spec: model:man.model, threshold: 0.5}
    labels: labels.yaml
    db: docmill.db
    timeout: 60                   # seconds per document
    max_bytes: 104857600
    include: ["*.pdf"]
    exclude: ["drafts/*"]
    follow_links: false           # follow folder symlinks leading out of the source folder
    retry: {max_attempts: 3, initial: 1.0, maximum: 30.0, multiplier: 2.0, jitter: 1.0}
    journal:                      # (each key also works at the top level, which wins)
      commit_every: 2000          # journal batch: rows …
      commit_seconds: 1.0         # … or seconds, whichever comes first
      quarantine_after: 3         # failures before a document is set aside
      synchronous: NORMAL         # SQLite: OFF | NORMAL | FULL | EXTRA
      reconnect_seconds: 120      # a lost connection / a locked file is retried this long
    extract: {max_pages: 2000, max_inflated_bytes: 268435456, max_chars: 1000000, deadline: null}
    llm: {base_url: http://127.0.0.1:8000/v1, model: m, rpm: 500, tpm: 200000, max_cost: 5.0}
    steps: [myteam.steps:Summary]   # your own Processors after the classifier (also --step)
    step_options: {Summary: {max_words: 40}}   # each step's Options, by class name

The classifier options (``classifier: {spec: …, KEY: VALUE}``) are those of the classifier's
``OPTIONS`` class (``docmill.processors.registry``); the llm classifier's are the ``llm:`` keys
(``docmill.llm.settings``), which they override.
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
from docmill.llm.settings import LLMOptions
from docmill.processors.extract import ExtractOptions
from docmill.retry import RetryPolicy
from docmill.settings import check, from_mapping

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
class JournalSettings:
    """The ``journal:`` section: how results are committed and when a document is set aside."""

    commit_every: int = 2000  # a batch is committed after this many rows (500 cost ~15 % more per row) …
    commit_seconds: float = 1.0  # … or this many seconds, whichever comes first
    quarantine_after: int = 3  # failures before a document is set aside
    synchronous: str = "NORMAL"  # SQLite's PRAGMA synchronous (PostgreSQL ignores it)
    reconnect_seconds: float = 120.0  # retrying a lost connection / locked file, then the run stops

    def __post_init__(self) -> None:
        check(self.reconnect_seconds >= 0, "reconnect_seconds", self.reconnect_seconds, "must be >= 0")
        for name in ("commit_every", "commit_seconds", "quarantine_after"):
            check(getattr(self, name) > 0, name, getattr(self, name), "must be > 0")
        ok = isinstance(self.synchronous, str) and self.synchronous.upper() in _SYNC
        check(ok, "synchronous", self.synchronous, "one of " + ", ".join(_SYNC))


JOURNAL_KEYS = (
    "commit_every",
    "commit_seconds",
    "quarantine_after",
    "synchronous",
    "reconnect_seconds",
)  # top-level too


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
    classifier_options: Any = None  # the classifier's OPTIONS value (llm: the llm section itself)
    labels: str | None = None
    db: str = "docmill.db"
    timeout: float | None = None
    max_bytes: int | None = 100 * 1024 * 1024
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    follow_links: bool = False  # follow folder symlinks that leave the source folder
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=3, initial=0.5, maximum=30.0))
    journal: JournalSettings = field(default_factory=JournalSettings)
    retry_failed: bool = False
    fresh: bool = False
    max_cost: float | None = None
    llm: LLMOptions = field(default_factory=LLMOptions)  # a mapping is accepted and checked
    extract: ExtractOptions = field(default_factory=ExtractOptions)  # likewise
    progress: str = "auto"
    steps: tuple[str, ...] = ()  # your own steps, module:Class or an entry point (docmill.processors.steps)
    step_options: Mapping[str, Any] = field(default_factory=dict)  # Class → its Options, checked at build

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", self.strategy or default_strategy())
        _check_strategy(self.strategy)
        _check_strategy_options(self.strategy, self.strategy_options)
        _positive("workers", self.workers)
        _positive("timeout", self.timeout)
        _positive("max_bytes", self.max_bytes)
        check(self.max_cost is None or self.max_cost >= 0, "max_cost", self.max_cost, "must be >= 0")
        check(self.progress in _PROGRESS, "progress", self.progress, "one of " + ", ".join(_PROGRESS))
        for name in ("broker", "queue"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
        self._type_sections()

    def _type_sections(self) -> None:
        """Sections given as mappings (Python callers) become their values; classifier options too."""
        for name, kind in (("llm", LLMOptions), ("extract", ExtractOptions), ("journal", JournalSettings)):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, from_mapping(kind, value, name))
        if isinstance(self.retry, Mapping):
            object.__setattr__(self, "retry", _retry(self.retry))
        object.__setattr__(self, "classifier_options", self._typed_options())

    def _typed_options(self) -> Any:
        from docmill.processors.registry import options_for

        given = _explicit(self.classifier_options)
        if self.classifier.partition(":")[0] != "llm":
            return options_for(self.classifier, given)
        if given and not isinstance(self.classifier_options, LLMOptions):  # LLMOptions: the llm section
            checked = from_mapping(LLMOptions, given, "classifier")
            object.__setattr__(self, "llm", dataclasses.replace(self.llm, **_picked(checked, given)))
        return self.llm

    @property
    def commit_every(self) -> int:
        """``journal.commit_every``."""
        return self.journal.commit_every

    @property
    def commit_seconds(self) -> float:
        """``journal.commit_seconds``."""
        return self.journal.commit_seconds

    @property
    def quarantine_after(self) -> int:
        """``journal.quarantine_after``."""
        return self.journal.quarantine_after

    @property
    def synchronous(self) -> str:
        """``journal.synchronous``."""
        return self.journal.synchronous

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> RunConfig:
        """Read ``path`` (default: ./docmill.yaml when present), then apply non-None ``overrides``."""
        data = _read_yaml(path)
        _flags_win(data, overrides)
        for key, value in overrides.items():
            if isinstance(value, Mapping) and isinstance(data.get(key), Mapping):
                data[key] = {**data[key], **value}  # a section: the flags override key by key
            elif value is not None:
                data[key] = value
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RunConfig:
        """Build from plain data (parsed YAML): every key checked, nested sections typed."""
        values = dict(data)
        _split_classifier(values)
        _hoist_journal(values)
        if isinstance(values.get("retry"), Mapping):
            values["retry"] = _retry(values["retry"])
        return from_mapping(cls, values)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    @property
    def cost_limit(self) -> float | None:
        """``max_cost``, or the ``llm:`` section's ``max_cost``."""
        return self.max_cost if self.max_cost is not None else self.llm.max_cost

    def classifier_settings(self) -> dict[str, Any]:
        """The ``settings`` mapping handed to the classifier factory: its options, labels, journal."""
        from docmill.processors.registry import options_data

        settings = {**options_data(self.classifier_options), "journal": self.db}
        if self.labels is not None:
            settings["labels"] = self.labels
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
    check(not isinstance(value, bool) and isinstance(value, int | float), name, value, "must be a number")
    check(value > 0, name, value, "must be > 0")


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
    """``classifier: {spec: S, labels: L, …}`` → ``classifier: S``, ``labels: L``, the rest its options."""
    spec = values.get("classifier")
    if isinstance(spec, Mapping):
        options = dict(spec)
        values["classifier"] = options.pop("spec", options.pop("name", "keywords"))
        if "labels" in options:
            labels = options.pop("labels")
            values.setdefault("labels", labels)
        values["classifier_options"] = {**options, **_explicit(values.get("classifier_options"))}


def _hoist_journal(values: dict[str, Any]) -> None:
    """Top-level ``commit_every`` & co. into the ``journal:`` section (the top-level key wins)."""
    top = {key: values.pop(key) for key in JOURNAL_KEYS if key in values}
    section = values.get("journal")
    if top and (section is None or isinstance(section, Mapping | JournalSettings)):
        values["journal"] = {**_explicit(section), **top}


def _flags_win(data: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """``llm`` overrides beat the file's ``classifier: {spec: llm, …}`` options (which beat ``llm:``)."""
    llm, classifier = overrides.get("llm"), data.get("classifier")
    if isinstance(llm, Mapping) and isinstance(classifier, Mapping):
        data["classifier"] = {k: v for k, v in classifier.items() if k not in llm}


def _retry(data: Mapping[str, Any]) -> RetryPolicy:
    """The ``retry:`` section (``retry_on`` holds exception classes: not a setting)."""
    return from_mapping(RetryPolicy, data, "retry", hidden=("retry_on",))


def _explicit(options: Any) -> dict[str, Any]:
    """The keys set in ``options``: all of a mapping's, a settings value's that differ from its defaults."""
    if options is None:
        return {}
    if isinstance(options, Mapping):
        return dict(options)
    default = type(options)()
    names = (f.name for f in dataclasses.fields(options))
    return {n: getattr(options, n) for n in names if getattr(options, n) != getattr(default, n)}


def _picked(options: Any, names: Mapping[str, Any]) -> dict[str, Any]:
    return {name: getattr(options, name) for name in names}
