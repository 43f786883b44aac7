"""RunConfig: validated at construction, loaded from YAML, overridden by flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.config import JournalSettings, Parallelization, RunConfig
from docmill.errors import ConfigError, UnknownExecutorError
from docmill.llm.settings import LLMOptions
from docmill.processors.extract import ExtractOptions
from docmill.retry import RetryPolicy


def test_defaults_are_valid_and_frozen() -> None:
    config = RunConfig(strategy="sequential")
    assert config.db == "docmill.db" and config.commit_every == 2000 and config.quarantine_after == 3
    assert config.parallelization == Parallelization(max_processes=None, max_threads_per_process=4)
    with pytest.raises(AttributeError):
        config.workers = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        RunConfig("sequential")  # type: ignore[call-arg]  # keyword-only


def test_default_strategy_is_a_registered_one() -> None:
    assert RunConfig().strategy in ("auto", "processes")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 0}, r"workers: invalid value 0 \(must be > 0\)"),
        ({"journal": {"commit_every": -1}}, r"journal.commit_every: invalid value -1 \(must be > 0\)"),
        ({"journal": {"commit_seconds": 0}}, "journal.commit_seconds: invalid value 0"),
        ({"timeout": -5}, r"timeout: invalid value -5 \(must be > 0\)"),
        ({"max_bytes": 0}, "max_bytes: invalid value 0"),
        ({"journal": {"quarantine_after": 0}}, "journal.quarantine_after: invalid value 0"),
        ({"max_cost": -1.0}, r"max_cost: invalid value -1.0 \(must be >= 0\)"),
        ({"progress": "loud"}, r"progress: invalid value 'loud' \(one of auto, rich, log, none\)"),
        ({"journal": {"synchronous": "maybe"}}, "journal.synchronous: invalid value 'maybe'"),
        ({"workers": "two"}, r"workers: invalid value 'two' \(must be a number\)"),
        ({"llm": {"rmp": 5}}, r"^llm.rmp: unknown setting; did you mean rpm\?$"),
        (
            {"extract": {"max_pages": 0}},
            r"extract.max_pages: invalid value 0 \(must be a whole number >= 1\)",
        ),
    ],
)
def test_validation_rejects_bad_values(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        RunConfig(strategy="sequential", **changes)  # type: ignore[arg-type]
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(UnknownExecutorError, match="choose one of: .*sequential"):
        RunConfig(strategy="warp-drive")


def test_load_yaml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "docmill.yaml"
    path.write_text(
        "strategy: threads\nworkers: 3\ninclude: '*.pdf'\nexclude: [a/*, b/*]\n"
        "parallelization: {max_processes: 2, max_threads_per_process: 8}\n"
        "retry: {max_attempts: 2, initial: 0.1, maximum: 1.0}\n"
        "llm: {base_url: 'http://x', model: m, max_cost: 2.5, rpm: 100}\n"
        "classifier: {spec: llm, rpm: 60, labels: l.yaml}\n"
        "extract: {max_pages: 10, deadline: 5}\n"
    )
    config = RunConfig.load(path, workers=5, strategy=None)
    assert config.strategy == "threads" and config.workers == 5
    assert config.include == ("*.pdf",) and config.exclude == ("a/*", "b/*")
    assert config.parallelization.max_threads_per_process == 8
    assert config.retry == RetryPolicy(max_attempts=2, initial=0.1, maximum=1.0)
    assert config.classifier == "llm" and config.labels == "l.yaml"
    assert config.llm == LLMOptions(base_url="http://x", model="m", max_cost=2.5, rpm=60.0)
    assert config.classifier_options == config.llm  # the llm classifier's options are the llm section
    assert config.extract == ExtractOptions(max_pages=10, deadline=5.0)
    assert config.cost_limit == 2.5
    settings = config.classifier_settings()
    assert settings["base_url"] == "http://x" and settings["rpm"] == 60.0 and settings["labels"] == "l.yaml"


def test_load_reads_docmill_yaml_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docmill.yaml").write_text("strategy: sequential\ncommit_every: 7\n")
    monkeypatch.chdir(tmp_path)
    assert RunConfig.load().commit_every == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("strategy: [unclosed\n", "bad YAML in .*line"),
        ("- a list\n", "expected a mapping"),
        ("strategy: sequential\nwokers: 2\n", r"^wokers: unknown setting; did you mean workers\?$"),
        ("strategy: sequential\nparallelization: {max_procs: 2}\n", "parallelization.max_procs: unknown"),
        (
            "strategy: sequential\nretry: {max_attempts: 0}\n",
            "retry.max_attempts: invalid value 0 .must be >= 1.",
        ),
        (
            "strategy: sequential\nretry: {initial: soon}\n",
            r"retry.initial: invalid value 'soon' \(must be a",
        ),
        ("strategy: sequential\nretry: {retry_on: x}\n", "retry.retry_on: unknown setting"),
        ("strategy: sequential\ninclude: 5\n", "include: invalid value 5"),
        ("strategy: sequential\nllm: 5\n", "llm: expected a mapping of settings, got 5"),
        ("strategy: sequential\nllm: {rpm: 0}\n", r"llm.rpm: invalid value 0.0 \(must be > 0\)"),
        ("strategy: sequential\nllm: {rpm: fast}\n", r"llm.rpm: invalid value 'fast' \(must be a number\)"),
        ("strategy: sequential\nllm: {timeout: -1}\n", r"llm.timeout: invalid value -1.0 \(must be > 0\)"),
        ("strategy: sequential\ntimeout: -1\n", r"^timeout: invalid value -1.0 \(must be > 0\)$"),
        ("strategy: sequential\nllm: {provider: azure}\n", "llm.provider: invalid value 'azure'"),
        ("strategy: sequential\nllm: {response_format: xml}\n", "llm.response_format: invalid value 'xml'"),
        ("strategy: sequential\nllm: {limiter: global}\n", "llm.limiter: invalid value 'global'"),
        ("strategy: sequential\nextract: {max_chars: -1}\n", "extract.max_chars: invalid value -1"),
        ("strategy: sequential\nextract: {max_page: 9}\n", "extract.max_page: .*did you mean max_pages"),
        (
            "strategy: sequential\njournal: {commit_evry: 9}\n",
            "journal.commit_evry: .*did you mean commit_every",
        ),
        ("strategy: sequential\ncommit_every: 0\n", r"journal.commit_every: invalid value 0 \(must be > 0\)"),
        (
            "classifier: {spec: keywords, bogus: 1}\n",
            r"^classifier.bogus: unknown setting \(known: max_chars",
        ),
        (
            "classifier: {spec: 'model:F', threshhold: 0.5}\n",
            r"^classifier.threshhold: unknown setting; did you mean threshold\?$",
        ),
        (
            "classifier: {spec: 'model:F', threshold: 2}\n",
            r"classifier.threshold: invalid value 2.0 \(must be within",
        ),
        ("classifier: {spec: llm, rmp: 5}\n", r"^classifier.rmp: unknown setting; did you mean rpm\?$"),
        (
            "classifier: {spec: none, max_chars: 5}\n",
            r"^classifier.max_chars: unknown setting \(known: none\)$",
        ),
        ("classifier: {spec: warp}\n", "unknown classifier 'warp'"),
    ],
)
def test_bad_files_are_one_line_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        RunConfig.load(path)
    assert "\n" not in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        RunConfig.load(tmp_path / "nope.yaml")


def test_public_settings_are_json_ready() -> None:
    import json

    data = RunConfig(strategy="sequential").public()
    assert json.loads(json.dumps(data))["retry"]["max_attempts"] == 3


def test_public_settings_never_carry_secrets() -> None:
    with pytest.raises(ConfigError, match="llm.api_key: unknown setting; did you mean api_key_env"):
        RunConfig(strategy="sequential", llm={"api_key": "sk-123"})  # type: ignore[arg-type]
    config = RunConfig(
        strategy="celery",
        llm={"api_key_env": "OPENAI_API_KEY", "base_url": "http://u:pw@host/v1"},  # type: ignore[arg-type]
        strategy_options={"broker": "redis://:hunter2@localhost:6379/0"},
        db="postgresql://me:s3cret@db/test",
    )
    text = str(config.public())
    assert "sk-123" not in text and "hunter2" not in text and "pw@" not in text and "s3cret" not in text
    assert config.public()["llm"]["api_key_env"] == "OPENAI_API_KEY"


def test_broker_and_queue_reach_the_celery_strategy_before_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("celery")
    from docmill._build import build_executor

    monkeypatch.setenv("DOCMILL_BROKER", "redis://127.0.0.1:6399/9")
    monkeypatch.setenv("DOCMILL_QUEUE", "from-env")
    config_file = tmp_path / "docmill.yaml"
    config_file.write_text("strategy: celery\nbroker: redis://127.0.0.1:6399/1\nqueue: from-file\n")
    cases = [
        (RunConfig.load(config_file), ("redis://127.0.0.1:6399/1", "from-file")),
        (RunConfig.load(config_file, queue="from-flag"), ("redis://127.0.0.1:6399/1", "from-flag")),
        (
            RunConfig(strategy="celery", strategy_options={"queue": "opt"}),
            ("redis://127.0.0.1:6399/9", "opt"),
        ),
        (RunConfig(strategy="celery"), ("redis://127.0.0.1:6399/9", "from-env")),
    ]
    for config, expected in cases:
        executor = build_executor(config)
        try:
            assert (executor.broker, executor.queue) == expected  # type: ignore[attr-defined]
        finally:
            executor.close()
    assert build_executor(RunConfig(strategy="threads", workers=1, broker="redis://x:1/0")).name == "threads"


@pytest.mark.parametrize("value", ["", "  ", 5])
def test_broker_and_queue_must_be_names(value: object) -> None:
    for key in ("broker", "queue"):
        with pytest.raises(ConfigError, match=key):
            RunConfig(**{key: value})  # type: ignore[arg-type]


def test_a_broker_password_never_reaches_the_run_record() -> None:
    public = RunConfig(broker="redis://:hunter2@cache:6379/0").public()
    assert public["broker"] == "redis://***@cache:6379/0" and "hunter2" not in str(public)


def test_journal_keys_work_in_their_section_and_at_the_top_level(tmp_path: Path) -> None:
    path = tmp_path / "docmill.yaml"
    path.write_text(
        "strategy: sequential\njournal: {commit_every: 7, quarantine_after: 5}\n"
        "commit_every: 9\nsynchronous: full\n"
    )
    config = RunConfig.load(path)
    assert config.journal == JournalSettings(commit_every=9, quarantine_after=5, synchronous="full")
    assert (config.commit_every, config.quarantine_after, config.synchronous) == (9, 5, "full")
    assert RunConfig.load(path, journal={"commit_every": 11}).journal.quarantine_after == 5
    assert RunConfig.load(path, commit_every=11).commit_every == 11


def test_classifier_options_are_the_classifiers_own_typed_value() -> None:
    from docmill.processors.classify_keywords import KeywordOptions
    from docmill.processors.classify_model import ModelOptions

    keywords = RunConfig.from_mapping({"classifier": {"spec": "keywords", "threshold": 0.25}})
    assert keywords.classifier_options == KeywordOptions(threshold=0.25)
    assert keywords.classifier_settings() == {
        "max_chars": KeywordOptions().max_chars,
        "threshold": 0.25,
        "journal": "docmill.db",
    }
    model = keywords.replace(classifier="model:F")  # the options set carry over when they fit
    assert model.classifier_options == ModelOptions(threshold=0.25)
    with pytest.raises(ConfigError, match="classifier.threshold: unknown setting"):
        keywords.replace(classifier="none")


def test_llm_section_stays_the_llm_classifiers_options_through_replace() -> None:
    config = RunConfig.from_mapping({"classifier": {"spec": "llm", "rpm": 60}, "llm": {"rpm": 10, "tpm": 5}})
    assert (config.llm.rpm, config.llm.tpm) == (60.0, 5.0)
    changed = config.replace(llm=LLMOptions(rpm=30))
    assert changed.llm == LLMOptions(rpm=30) and changed.classifier_options is changed.llm
    assert RunConfig.load(None, classifier={"spec": "llm", "rpm": 60}, llm={"rpm": 5}).llm.rpm == 60.0


def test_flags_given_as_a_section_beat_the_files_llm_classifier_options(tmp_path: Path) -> None:
    path = tmp_path / "docmill.yaml"
    path.write_text("classifier: {spec: llm, rpm: 60, model: m}\nllm: {rpm: 10, tpm: 100}\n")
    config = RunConfig.load(path, llm={"rpm": 5})
    assert (config.llm.rpm, config.llm.tpm, config.llm.model) == (5.0, 100.0, "m")


def test_a_postgresql_journal_has_no_response_cache_file_beside_it(tmp_path: Path) -> None:
    from docmill.llm.factory import cache_of as _cache

    assert _cache("auto", "postgresql://me@db/test") is None
    assert _cache(False, str(tmp_path / "j.db")) is None
    cache = _cache("auto", str(tmp_path / "j.db"))
    assert cache is not None and cache.path == tmp_path / "docmill-cache.db"
    cache.close()


def test_the_settings_listed_in_docs_run_md_load_and_name_every_key() -> None:
    import re

    import yaml

    from docmill.settings import field_names

    docs = Path(__file__).parents[2] / "docs" / "run.md"
    block = re.search(r"```yaml\n(.*?)```", docs.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None
    data = yaml.safe_load(block.group(1))
    config = RunConfig.from_mapping(data)
    assert config.llm.rpm == 500.0 and config.journal.commit_every == 2000
    for section, kind in (("llm", LLMOptions), ("extract", ExtractOptions), ("journal", JournalSettings)):
        assert sorted(data[section]) == sorted(field_names(kind)), f"docs/run.md's {section}: is incomplete"


LABELS_YAML = 'labels:\n  note:\n    description: "A short note."\n    keywords: [note, memo]\n'


@pytest.mark.parametrize(("threshold", "label"), [(0.0, "note"), (0.99, None)])
def test_the_classifier_threshold_reaches_the_classifier(
    tmp_path: Path, threshold: float, label: str
) -> None:
    from docmill._build import build_pipeline
    from docmill.document import Document, DocumentRef

    (tmp_path / "labels.yaml").write_text(LABELS_YAML)
    config = RunConfig.from_mapping(
        {"classifier": {"spec": "keywords", "threshold": threshold}, "labels": str(tmp_path / "labels.yaml")}
    )
    classifier = build_pipeline(config).steps[-1]
    doc = Document(ref=DocumentRef(uri="mem://a", id="a"), sha256="0" * 64, text="a note, a memo")
    out = classifier.process(doc)
    assert out.metadata["label"] == label and out.metadata["score"] > 0


def test_llm_settings_reach_the_client(tmp_path: Path) -> None:
    pytest.importorskip("httpx")
    from docmill.limits import provider
    from docmill.llm import settings
    from docmill.processors.classify_llm import from_spec

    assert settings.DEFAULT_MARGIN == provider.DEFAULT_MARGIN
    (tmp_path / "labels.yaml").write_text(LABELS_YAML)
    config = RunConfig.from_mapping(
        {
            "classifier": {"spec": "llm", "response_format": "json_object", "max_attempts": 2},
            "llm": {"model": "m", "base_url": "http://llm.test/v1", "cache": False, "limiter": "local"},
            "labels": str(tmp_path / "labels.yaml"),
        }
    )
    clf = from_spec(None, config.classifier_settings())
    clf.setup()
    try:
        assert clf._client is not None and clf._client.provider.response_format == "json_object"  # type: ignore[attr-defined]
        assert clf.retry.max_attempts == 2 and clf.cache is None
    finally:
        clf.teardown()
