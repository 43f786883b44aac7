"""RunConfig: validated at construction, loaded from YAML, overridden by flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.config import Parallelization, RunConfig
from docmill.errors import ConfigError, UnknownExecutorError


def test_defaults_are_valid_and_frozen() -> None:
    config = RunConfig(strategy="sequential")
    assert config.db == "docmill.db" and config.commit_every == 500 and config.quarantine_after == 3
    assert config.parallelization == Parallelization(max_processes=None, max_threads_per_process=4)
    with pytest.raises(AttributeError):
        config.workers = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        RunConfig("sequential")  # type: ignore[misc]  # keyword-only


def test_default_strategy_is_a_registered_one() -> None:
    assert RunConfig().strategy in ("auto", "processes")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 0}, "workers must be > 0"),
        ({"commit_every": -1}, "commit_every"),
        ({"commit_seconds": 0}, "commit_seconds"),
        ({"timeout": -5}, "timeout"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"quarantine_after": 0}, "quarantine_after"),
        ({"max_cost": -1.0}, "max_cost"),
        ({"progress": "loud"}, "progress must be one of"),
        ({"synchronous": "maybe"}, "synchronous"),
        ({"workers": "two"}, "must be a number"),
    ],
)
def test_validation_rejects_bad_values(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig(strategy="sequential", **changes)  # type: ignore[arg-type]


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(UnknownExecutorError, match="choose one of: .*sequential"):
        RunConfig(strategy="warp-drive")


def test_load_yaml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "docmill.yaml"
    path.write_text(
        "strategy: threads\nworkers: 3\ninclude: '*.pdf'\nexclude: [a/*, b/*]\n"
        "parallelization: {max_processes: 2, max_threads_per_process: 8}\n"
        "retry: {max_attempts: 2, initial: 0.1, maximum: 1.0}\n"
        "llm: {base_url: 'http://x', model: m, max_cost: 2.5}\n"
        "classifier: {spec: llm, temperature: 0}\n"
    )
    config = RunConfig.load(path, workers=5, strategy=None)
    assert config.strategy == "threads" and config.workers == 5
    assert config.include == ("*.pdf",) and config.exclude == ("a/*", "b/*")
    assert config.parallelization.max_threads_per_process == 8
    assert config.retry.max_attempts == 2
    assert config.classifier == "llm" and config.classifier_options == {"temperature": 0}
    assert config.cost_limit == 2.5
    settings = config.classifier_settings()
    assert settings["base_url"] == "http://x" and settings["temperature"] == 0


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
        ("strategy: sequential\nwokers: 2\n", "unknown setting.*wokers"),
        ("strategy: sequential\nparallelization: {max_procs: 2}\n", "unknown parallelization setting"),
        ("strategy: sequential\nretry: {max_attempts: 0}\n", "max_attempts"),
        ("strategy: sequential\ninclude: 5\n", "include must be"),
        ("strategy: sequential\nllm: 5\n", "llm must be a mapping"),
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
    config = RunConfig(
        strategy="celery",
        llm={"api_key": "sk-123", "api_key_env": "OPENAI_API_KEY", "base_url": "http://u:pw@host/v1"},
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
