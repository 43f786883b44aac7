"""`docmill plan`: the classifier given decides whether LLM requests, tokens and rate limits count."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from docmill.bench.plan import llm_stage
from docmill.cli.main import app
from docmill.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "examples" / "corpus"


@pytest.mark.parametrize(
    "classifier,flag,uses",
    [
        (None, None, True),
        (None, False, False),
        (None, True, True),
        ("llm", None, True),
        ("llm:gpt-4o-mini", True, True),
        ("keywords", None, False),
        ("model:man.model", None, False),
        ("model:man.model", False, False),
        ("none", None, False),
    ],
)
def test_the_classifier_decides(classifier: str | None, flag: bool | None, uses: bool) -> None:
    assert llm_stage(classifier, flag) is uses


@pytest.mark.parametrize("classifier,flag", [("model:m.model", True), ("llm", False)])
def test_a_flag_contradicting_the_classifier_is_refused(classifier: str, flag: bool) -> None:
    with pytest.raises(ConfigError, match="contradicts --classifier") as caught:
        llm_stage(classifier, flag)
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "ex.model"
    args = ["train", str(CORPUS), "-t", str(REPO / "examples" / "corpus-labels.csv")]
    result = CliRunner().invoke(app, [*args, "-o", str(path), "--holdout", "0", "-s", "sequential"])
    assert result.exit_code == 0, result.output
    return path


def _plan(*extra: str) -> str:
    args = ["plan", "--docs", "500000", "--sample", str(CORPUS), "--strategies", "processes"]
    result = CliRunner().invoke(app, [*args, "--deadline", "1d", "--rpm", "600", *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _bindings(output: str) -> set[str]:
    """The binding limit of every row of the strategy table (the first table of the report)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| strategy |"))
    header = [cell.strip() for cell in lines[start].split("|")]
    column = header.index("binding limit")
    rows = lines[start + 2 :]
    table = rows[: next((i for i, line in enumerate(rows) if not line.startswith("|")), len(rows))]
    return {row.split("|")[column].strip() for row in table}


def test_a_local_model_counts_no_llm_requests(model: Path) -> None:
    output = _plan("--classifier", f"model:{model}")
    assert "No LLM stage" in output and "requests/min" not in output and "Cost:" not in output
    assert _bindings(output) == {"cores"}


def test_the_llm_classifier_counts_one_request_per_document() -> None:
    output = _plan("--classifier", "llm", "--labels", str(CORPUS / "labels.yaml"))
    assert "LLM: 1 request" in output and "No LLM stage" not in output
    assert _bindings(output) <= {"rate limit (rpm)", "llm concurrency"}
