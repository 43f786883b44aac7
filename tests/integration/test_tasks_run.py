"""A labels file with tasks, run end to end: the real emulator over HTTP, a real SQLite journal.

Two LLM tasks (``topic``, single-label; ``audience``, multi-label) and one keywords task
(``language``) over man pages: all the LLM tasks of a document are one request (or one per task
with ``llm.tasks_per_request: one``); the export has a ``label_<task>`` column per task; ``status``
counts each task; ``eval`` scores each task against a truth CSV with one column per task.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from docmill.cli.main import main
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer

N = 12
TOPICS = ("user-command", "library-function", "system-call", "overview", "admin-command", "file-format")
AUDIENCES = ("programmer", "user", "administrator")
TASKS = """\
tasks:
  topic:
    description: The section of the manual the page belongs to.
    labels:
      user-command: {description: "A program users run from the shell.", keywords: [options, command]}
      library-function: {description: "A function of a C or Perl library.", keywords: [include, returns]}
      system-call: {description: "A call into the kernel.", keywords: [system call, errno, kernel]}
      overview: {description: "An overview of a subject or convention.", keywords: [overview, protocol]}
      admin-command: {description: "A command for the administrator.", keywords: [daemon, root]}
      file-format: {description: "The format of a file.", keywords: [file, format, fields]}
  audience:
    multi: true
    labels:
      programmer: {keywords: [function, include, returns, struct, pointer, errno]}
      user: {keywords: [command, options, shell, display, print]}
      administrator: {keywords: [daemon, root, configuration, service, kernel]}
  language:
    classifier: keywords
    labels:
      c: {keywords: [include, int, char, struct, void]}
      perl: {keywords: [perl, module]}
      shell: {keywords: [bash, sh, shell]}
"""
AUDIENCE_OF = {
    "library-function": "programmer",
    "system-call": "programmer;administrator",
    "user-command": "user",
    "admin-command": "administrator",
    "file-format": "user;administrator",
    "overview": "user",
}


@pytest.fixture
def corpus(tmp_path: Path, manpages: Path, manpage_labels: Path) -> Path:
    """``N`` man pages (text and markdown), a tasks file beside them and a truth CSV per task."""
    rows = [r for r in csv.DictReader(manpage_labels.open()) if r["format"] in ("txt", "md")][:N]
    root = tmp_path / "corpus"
    for row in rows:
        (root / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manpages / row["path"], root / row["path"])
    (tmp_path / "tasks.yaml").write_text(TASKS, encoding="utf-8")
    with (tmp_path / "truth.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "topic", "label_audience"])
        writer.writerows([r["path"], r["label"], AUDIENCE_OF[r["label"]]] for r in rows)
    return root


def _run(
    corpus: Path, server: EmulatorServer | None, *flags: str, per_task: bool = False, code: int = 0
) -> str:
    folder = corpus.parent
    db = str(folder / "j.db")
    config = folder / "docmill.yaml"
    config.write_text(f"llm: {{cache: false, tasks_per_request: {'one' if per_task else 'all'}}}\n")
    args = ["run", str(corpus), "--labels", str(folder / "tasks.yaml"), "--db", db, "--progress", "none"]
    args += ["--config", str(config), "--fresh", *flags]
    if server is not None:
        args += ["-c", "llm", "--model", "emulated-small", "--base-url", f"{server.url}/v1"]
    assert main(args) == code
    return db


def _export(db: str, tmp_path: Path, fmt: str) -> Path:
    out = tmp_path / f"out.{fmt}"
    assert main(["export", "--db", db, "--format", fmt, "-o", str(out)]) == 0
    return out


def _server() -> EmulatorServer:
    return EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3))


def _check_csv(path: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == N and all(r["status"] == "ok" for r in rows)
    for row in rows:
        assert row["label_topic"] in TOPICS and row["label"] == row["label_topic"]
        assert set(filter(None, row["label_audience"].split(";"))) <= set(AUDIENCES)
        assert row["label_language"] in ("", "c", "perl", "shell")
    return rows


def _requests(db: str, tmp_path: Path) -> list[int]:
    lines = _export(db, tmp_path, "jsonl").read_text().splitlines()
    return [json.loads(line)["result"]["requests"] for line in lines]


@pytest.mark.parametrize("strategy", ["threads", "sequential", "processes"])
def test_every_llm_task_of_a_document_is_one_request(corpus: Path, tmp_path: Path, strategy: str) -> None:
    with _server() as server:
        db = _run(corpus, server, "-s", strategy, "-w", "2")
        assert server.stats()["requests"] == N  # one call per document for its two LLM tasks
    rows = _check_csv(_export(db, tmp_path, "csv"))
    assert any(row["label_audience"] for row in rows) and any(row["label_language"] for row in rows)
    assert _requests(db, tmp_path) == [1] * N


@pytest.mark.parametrize("strategy", ["threads", "sequential"])
def test_one_request_per_task_when_asked(corpus: Path, tmp_path: Path, strategy: str) -> None:
    with _server() as server:
        db = _run(corpus, server, "-s", strategy, per_task=True)
        assert server.stats()["requests"] == N * 2  # documents × LLM tasks
    _check_csv(_export(db, tmp_path, "csv"))
    assert _requests(db, tmp_path) == [2] * N  # summed over the document's tasks


@pytest.mark.parametrize("per_task", [False, True])
def test_awaited_tasks_count_every_request(corpus: Path, tmp_path: Path, per_task: bool) -> None:
    """``asyncio`` awaits the calls (a slow one may be sent twice): every request is on the record."""
    with _server() as server:
        db = _run(corpus, server, "-s", "asyncio", per_task=per_task)
        received = server.stats()["requests"]
    _check_csv(_export(db, tmp_path, "csv"))
    recorded = _requests(db, tmp_path)
    assert received == sum(recorded) and min(recorded) == (2 if per_task else 1)


def test_keywords_give_every_column_without_an_llm(corpus: Path, tmp_path: Path) -> None:
    db = _run(corpus, None, "-c", "keywords", "-s", "sequential")
    rows = list(csv.DictReader(_export(db, tmp_path, "csv").open()))
    assert len(rows) == N and {"label_topic", "label_audience", "label_language"} <= set(rows[0])
    assert sum(1 for r in rows if r["label_topic"] in TOPICS) >= N // 2


def test_jsonl_and_parquet_nest_the_multi_label_answer(corpus: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    with _server() as server:
        db = _run(corpus, server, "-s", "threads")
    lines = [json.loads(line) for line in _export(db, tmp_path, "jsonl").read_text().splitlines()]
    assert all(isinstance(line["label_audience"], list) for line in lines)
    assert all(line["result"]["tasks"]["topic"]["label"] == line["label_topic"] for line in lines)
    table = pq.read_table(_export(db, tmp_path, "parquet"))
    assert str(table.schema.field("label_audience").type) == "list<element: string>"
    assert table.column("label_audience").to_pylist() == [line["label_audience"] for line in lines]


def test_status_and_eval_show_each_task(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _server() as server:
        db = _run(corpus, server, "-s", "threads")
    capsys.readouterr()
    assert main(["status", "--db", db, "--json"]) == 0
    by_task = json.loads(capsys.readouterr().out)["by_task"]
    assert sum(by_task["topic"].values()) == N and set(by_task) == {"topic", "audience", "language"}
    assert main(["status", "--db", db]) == 0
    assert "\naudience: " in capsys.readouterr().out
    assert main(["eval", "--db", db, "--truth", str(tmp_path / "truth.csv"), "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)["tasks"]
    assert set(reports) == {"topic", "audience"}  # the truth has no language column
    assert reports["topic"]["n"] == N and 0.5 <= reports["topic"]["accuracy"] <= 1.0
    assert reports["audience"]["multi"] and 0.0 < reports["audience"]["micro_f1"] <= 1.0
    assert main(["eval", "--db", db, "--truth", str(tmp_path / "truth.csv")]) == 0
    out = capsys.readouterr().out
    assert "topic accuracy: " in out and "audience micro-F1: " in out


def test_a_reply_outside_a_task_set_is_retried_then_quarantined(corpus: Path, tmp_path: Path) -> None:
    bad = EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3, bad_label=1.0)
    with EmulatorServer(bad) as server:
        db = _run(corpus, server, "-s", "threads", "--quarantine-after", "1", code=1)  # all failed
        assert server.stats()["requests"] == N * 3  # the first ask and invalid_retries (2) more
    rows = list(csv.DictReader(_export(db, tmp_path, "csv").open()))
    assert {r["status"] for r in rows} <= {"failed", "quarantined"}
    assert all(r["error"].startswith("InvalidModelOutput: task 'topic'") for r in rows)


def test_a_wrong_tasks_file_stops_before_any_work(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tasks.yaml").write_text(TASKS.replace("multi: true", "multi: true\n    topk: 2"))
    args = ["run", str(corpus), "--labels", str(tmp_path / "tasks.yaml"), "--db", str(tmp_path / "j.db")]
    assert main([*args, "-c", "keywords", "--progress", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("tasks.audience.topk: unknown setting; did you mean top_k?") and "\n" not in err
    assert not (tmp_path / "j.db").exists()


@pytest.mark.slow
def test_two_hundred_man_pages_two_llm_tasks_two_hundred_requests(
    tmp_path: Path, manpages: Path, manpage_labels: Path
) -> None:
    """200 distinct man pages, ``-c llm``: the emulator receives exactly 200 requests."""
    root, seen = tmp_path / "corpus", set[bytes]()
    for row in csv.DictReader(manpage_labels.open()):
        data = (manpages / row["path"]).read_bytes()
        if data not in seen and len(seen) < 200:
            seen.add(data)
            (root / row["path"]).parent.mkdir(parents=True, exist_ok=True)
            (root / row["path"]).write_bytes(data)
    (tmp_path / "tasks.yaml").write_text(TASKS, encoding="utf-8")
    with _server() as server:
        db = _run(root, server, "-s", "threads")
        assert server.stats()["requests"] == 200
    rows = list(csv.DictReader(_export(db, tmp_path, "csv").open()))
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(rows) == 200 and len(ok) >= 190  # a broken PDF may fail extraction, not the LLM
    assert all(r["label_topic"] in TOPICS for r in ok)
    assert all(set(filter(None, r["label_audience"].split(";"))) <= set(AUDIENCES) for r in ok)


def test_python_tables_have_the_task_columns(corpus: Path) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    import docmill

    folder = corpus.parent
    labels, db = str(folder / "tasks.yaml"), str(folder / "p.db")
    result = docmill.run(str(corpus), labels=labels, classifier="keywords", strategy="sequential", db=db)
    frame = result.to_pandas()
    assert list(frame.columns[-3:]) == ["label_topic", "label_audience", "label_language"]
    assert all(isinstance(value, list) for value in frame["label_audience"])
    table = result.to_arrow()
    assert str(table.schema.field("label_audience").type).startswith("list<")
    with docmill.open_journal(db) as journal:
        assert "label_topic" in journal.rows()[0]


def test_a_batch_run_records_and_exports_every_task(corpus: Path, tmp_path: Path) -> None:
    """``--batch``: the tasks of a document in one line of a batch file, exported per task."""
    batch = EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3, batch_seconds=0.2)
    with EmulatorServer(batch) as server:
        (tmp_path / "poll.yaml").write_text("llm: {cache: false, batch_poll_seconds: 0.2}\n")
        args = ["run", str(corpus), "--labels", str(tmp_path / "tasks.yaml"), "--db", str(tmp_path / "b.db")]
        args += [
            "--progress",
            "none",
            "-c",
            "llm",
            "--model",
            "emulated-small",
            "--batch",
            "-s",
            "sequential",
        ]
        args += ["--base-url", f"{server.url}/v1", "--config", str(tmp_path / "poll.yaml")]
        assert main(args) == 0
        stats = server.stats()
    assert (stats["requests"], stats["batch_requests"]) == (0, N)  # one line per document, no online call
    _check_csv(_export(str(tmp_path / "b.db"), tmp_path, "csv"))
