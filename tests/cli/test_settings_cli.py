"""``docmill run`` refuses a bad setting before any work: exit 2, one line naming the key, no journal."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from docmill.cli.main import main
from docmill.cli.run import FLAGS, NOT_SETTINGS, run_command
from docmill.config import RunConfig
from docmill.settings import hint_of

LABELS = 'labels:\n  note:\n    description: "A short note."\n    keywords: [note]\n'

BAD_SETTINGS = [
    ("classifier: {spec: keywords, bogus: 1}",
     "classifier.bogus: unknown setting (known: max_chars, threshold)"),
    ("classifier: {spec: 'model:F', threshhold: 0.5}",
     "classifier.threshhold: unknown setting; did you mean threshold?"),
    ("llm: {rmp: 500}", "llm.rmp: unknown setting; did you mean rpm?"),
    ("llm: {rpm: 0}", "llm.rpm: invalid value 0.0 (must be > 0)"),
    ("llm: {rpm: fast}", "llm.rpm: invalid value 'fast' (must be a number)"),
    ("llm: {timeout: -1}", "llm.timeout: invalid value -1.0 (must be > 0)"),
    ("timeout: -1", "timeout: invalid value -1.0 (must be > 0)"),
    ("llm: {api_key: sk-1}", "llm.api_key: unknown setting; did you mean api_key_env?"),
    ("extract: {max_pages: 0}", "extract.max_pages: invalid value 0 (must be a whole number >= 1)"),
    ("journal: {commit_evry: 5}", "journal.commit_evry: unknown setting; did you mean commit_every?"),
    ("quarantine_after: 0", "journal.quarantine_after: invalid value 0 (must be > 0)"),
    ("retry: {initial: soon}", "retry.initial: invalid value 'soon' (must be a number)"),
    ("wokers: 2", "wokers: unknown setting; did you mean workers?"),
]  # fmt: skip


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.txt").write_text("a short note", encoding="utf-8")
    (root / "labels.yaml").write_text(LABELS, encoding="utf-8")
    return root


def refused(corpus: Path, capsys: pytest.CaptureFixture[str], yaml: str, *flags: str) -> str:
    """Run with ``yaml`` as docmill.yaml; assert exit 2, one line and no file left; return the line."""
    config, db = corpus.parent / "docmill.yaml", corpus.parent / "j.db"
    config.write_text(yaml + "\n", encoding="utf-8")
    before = sorted(p.name for p in corpus.parent.iterdir())
    code = main(["run", str(corpus), "--config", str(config), "--db", str(db), "--progress", "none", *flags])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not db.exists() and sorted(p.name for p in corpus.parent.iterdir()) == before
    return err.strip()


@pytest.mark.parametrize(("yaml", "message"), BAD_SETTINGS)
def test_a_bad_setting_is_refused_before_any_work(
    corpus: Path, capsys: pytest.CaptureFixture[str], yaml: str, message: str
) -> None:
    assert refused(corpus, capsys, yaml) == f"docmill: error: {message}"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--rpm", "0"), "llm.rpm: invalid value 0.0 (must be > 0)"),
        (("--commit-every", "0"), "journal.commit_every: invalid value 0 (must be > 0)"),
        (("-c", "llm", "--tpm", "-5"), "llm.tpm: invalid value -5.0 (must be > 0)"),
    ],
)
def test_a_bad_flag_value_is_refused_the_same_way(
    corpus: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], message: str
) -> None:
    assert refused(corpus, capsys, "strategy: sequential", *flags) == f"docmill: error: {message}"


def test_a_good_file_still_runs(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = corpus.parent / "j.db"
    config = corpus.parent / "docmill.yaml"
    config.write_text(
        "strategy: sequential\nclassifier: {spec: keywords, threshold: 0.01}\njournal: {commit_every: 1}\n"
    )
    assert main(["run", str(corpus), "--config", str(config), "--db", str(db), "--progress", "none"]) == 0
    assert db.exists()


# -- the flags and the settings are spelled once -------------------------------------------------


def _plain(hint: Any) -> Any:
    """``X | None`` → X; ``list[str]`` → ``tuple[str, ...]`` (a repeatable flag gives a list)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        real = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = real[0] if len(real) == 1 else hint
    if typing.get_origin(hint) is list:
        return tuple[typing.get_args(hint)[0], ...]  # type: ignore[misc]
    return hint


def test_every_flag_names_a_setting_of_the_same_type() -> None:
    flags = typing.get_type_hints(run_command)
    for name, key in FLAGS.items():
        setting = _plain(hint_of(RunConfig, key))
        assert _plain(flags[name]) == setting, f"--{name} is {flags[name]}, {key} is {setting}"


def test_every_parameter_of_docmill_run_is_a_flag_of_the_table() -> None:
    parameters = set(inspect.signature(run_command).parameters)
    assert parameters == set(FLAGS) | set(NOT_SETTINGS)


def test_each_flag_lands_on_its_setting(
    corpus: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[RunConfig] = []

    def fake_run(config: RunConfig, **_: Any) -> Any:
        seen.append(config)
        stats = types.SimpleNamespace(done=0, ok=0)
        return types.SimpleNamespace(strategy="sequential", explanation="", stopped=None, stats=stats)

    monkeypatch.setattr("docmill.runner.run_config", fake_run)
    values = {"base_url": "http://llm.test/v1", "model": "m", "rpm": "5", "tpm": "700"}
    values |= {"commit_every": "3", "commit_seconds": "0.5", "quarantine_after": "4"}
    args = [f"--{name.replace('_', '-')}={value}" for name, value in values.items()]
    assert main(["run", str(corpus), "--strategy", "sequential", *args]) == 0, capsys.readouterr().err
    config = seen[0]
    for name, value in values.items():
        section, _, key = FLAGS[name].rpartition(".")
        got = getattr(getattr(config, section), key)
        assert str(got) == value or got == float(value), (name, got)
    assert config.classifier_settings()["journal"] == "docmill.db"
