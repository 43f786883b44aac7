"""``--step module:Class``: the documented example, run against the emulator in several strategies,
and every way a step can be wrong refused in one line before any work."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from docmill.cli.main import main
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer

DOCS = Path(__file__).parents[2] / "docs" / "steps.md"
N = 6
BROKEN = """

class Broken(Processor):
    def setup(self) -> None:
        raise RuntimeError("no model file")

    def process(self, doc: Document) -> Document:
        return doc


class NotAStep:
    pass
"""


@pytest.fixture
def steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``mysteps.py`` holding the example of docs/steps.md (and a broken step), importable."""
    code = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)[0]
    assert len(code.splitlines()) <= 30
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "mysteps.py").write_text(code + BROKEN)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(N):
        (root / f"doc-{i}.txt").write_text(f"Document {i}: the ls command lists files for users. " * (i + 1))
    yield root


def _run(root: Path, *args: str) -> int:
    db = root.parent / "j.db"
    return main(["run", str(root), "--db", str(db), "--progress", "none", "-c", "none", "--fresh", *args])


def _answers(root: Path) -> dict[str, list[str]]:
    out = root.parent / "out.jsonl"
    assert main(["export", "--db", str(root.parent / "j.db"), "-f", "jsonl", "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for row in rows:  # the step's calls are billed to the document: requests, tokens, cost
        used = row["result"]["steps"]["Questions"]
        assert used["requests"] == row["result"]["requests"] == 2 and used["tokens_in"] > 0
        assert used["cost"] == pytest.approx(row["result"]["cost"]) and used["cost"] > 0
    return {row["path"]: row["result"]["answers"] for row in rows}


def test_the_documented_step_asks_the_llm_the_same_in_every_strategy(
    steps: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = []
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3)) as server:
        llm = ["--model", "emulated-small", "--base-url", f"{server.url}/v1", "--step", "mysteps:Questions"]
        (steps.parent / "price.yaml").write_text("llm: {price_input_per_1m: 1.0, price_output_per_1m: 2.0}\n")
        llm += ["--config", str(steps.parent / "price.yaml")]
        for strategy in ("sequential", "processes", "asyncio"):
            assert _run(steps, "-s", strategy, "-w", "2", *llm) == 0
            seen.append(_answers(steps))
        assert server.stats()["requests"] == 3 * N * 2  # two questions per document, per run
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) == N
    assert all(len(answers) == 2 and all(answers) for answers in seen[0].values())
    capsys.readouterr()
    assert main(["status", "--db", str(steps.parent / "j.db"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cost_by_step"]["Questions"] == pytest.approx(data["cost"]) and data["cost"] > 0
    assert data["cost_by_step"]["classifier"] == pytest.approx(0.0)
    assert main(["status", "--db", str(steps.parent / "j.db")]) == 0
    assert "(classifier $0.0000, Questions $" in capsys.readouterr().out


def test_the_step_shares_the_llm_classifiers_limits(steps: Path, tmp_path: Path) -> None:
    from docmill._build import build_pipeline
    from docmill.config import RunConfig

    (tmp_path / "labels.yaml").write_text("labels:\n  a: {keywords: [x]}\n  b:\n")
    config = RunConfig(classifier="llm:m", labels=str(tmp_path / "labels.yaml"), steps=("mysteps:Questions",))
    pipeline = build_pipeline(config.replace(llm={"base_url": "http://127.0.0.1:9/v1"}))
    classifier, step = pipeline.steps[1:]
    assert step.step.context._llm.limits is classifier.limits  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "nowhere_at_all:Step"], "steps: cannot import nowhere_at_all:Step: ModuleNotFoundError"),
        (["--step", "mysteps:NotAStep"], "steps: mysteps:NotAStep is not a docmill Processor"),
        (["--step", "mysteps:Broken"], "steps: mysteps:Broken failed to start: RuntimeError: no model file"),
        (["--step", "questions-nowhere"], "steps: 'questions-nowhere' is neither module:Class nor a"),
        (
            ["--step", "mysteps:Questions", "--config", "{cfg}"],
            "step_options.Questions.questoins: unknown setting",
        ),
    ],
)
def test_a_wrong_step_stops_before_any_work(
    steps: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    config = steps.parent / "docmill.yaml"
    config.write_text("step_options:\n  Questions: {questoins: [why]}\n")
    assert _run(steps, *[a.replace("{cfg}", str(config)) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (steps.parent / "j.db").exists()


def test_a_step_calling_the_llm_without_one_fails_the_document_with_the_reason(steps: Path) -> None:
    assert _run(steps, "-s", "sequential", "--step", "mysteps:Questions") == 1  # every document failed
    out = steps.parent / "f.csv"
    assert main(["export", "--db", str(steps.parent / "j.db"), "-o", str(out)]) == 0
    assert "ConfigError: this step calls the LLM: configure one" in out.read_text()
