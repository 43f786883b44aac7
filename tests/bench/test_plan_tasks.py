"""`docmill plan` with a labels file of tasks: LLM requests per document follow the tasks and fields."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docmill.bench.plan import PlanInputs, Profile, Scaling, cost_per_doc, project, tokens_per_doc
from docmill.bench.plan_tasks import asked, typical_answer
from docmill.cli.main import app
from docmill.errors import ConfigError
from docmill.llm.prompt import count_prompt_tokens
from docmill.llm.tasks import build_task_messages
from docmill.model.tasks import load_tasks

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "examples" / "corpus"
TOPIC = "  topic:\n    labels: {invoice: {keywords: [invoice]}, recipe: {keywords: [recipe, oven]}}\n"
AUDIENCE = "  audience:\n    multi: true\n    labels: {buyer: {keywords: [pay]}, cook: {keywords: [bake]}}\n"
LANGUAGE = (
    "  language:\n    classifier: keywords\n    labels: {english: {keywords: [the]}, fr: {keywords: [le]}}\n"
)
MOOD = (
    "  mood:\n    classifier: llm\n    labels: {calm: {keywords: [please]}, urgent: {keywords: [overdue]}}\n"
)
FIELDS = "fields:\n  total: {type: number}\n  items: {type: string, list: true}\n"


def _file(tmp_path: Path, *tasks: str, fields: str = "") -> Path:
    path = tmp_path / "tasks.yaml"
    path.write_text("tasks:\n" + "".join(tasks) + fields)
    return path


@pytest.mark.parametrize(
    "classifier,per_request,requests",
    [
        ("llm", "all", 1),  # topic, audience, mood and the fields: one request
        ("llm", "one", 4),  # topic, audience, mood, then the fields
        ("keywords", "all", 1),  # mood's own classifier is llm, and the fields go to the llm
        ("keywords", "one", 2),
        (None, "one", 4),  # no classifier named: the llm, as plan assumes without --no-llm
    ],
)
def test_requests_per_document_follow_the_tasks(
    tmp_path: Path, classifier: str | None, per_request: str, requests: int
) -> None:
    path = _file(tmp_path, TOPIC, AUDIENCE, LANGUAGE, MOOD, fields=FIELDS)
    found = asked(path, classifier, per_request=per_request)
    assert found.requests == requests and found.estimated
    assert "language" in found.local


def test_nothing_asked_of_the_llm_is_no_request(tmp_path: Path) -> None:
    found = asked(_file(tmp_path, TOPIC, LANGUAGE), "keywords")
    assert found.requests == 0 and found.local == ("topic", "language")


def test_a_plain_labels_file_keeps_one_request_for_the_llm_classifier() -> None:
    assert asked(CORPUS / "labels.yaml", "llm").requests == 1
    assert asked(CORPUS / "labels.yaml", "keywords").requests == 0
    assert asked(None, None).requests == 1 and asked(None, None, False).requests == 0


def test_a_flag_contradicting_the_tasks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--no-llm contradicts .*tasks.yaml, whose tasks make 1 LLM"):
        asked(_file(tmp_path, LANGUAGE, MOOD), "keywords", False)
    with pytest.raises(ConfigError, match="llm.tasks_per_request must be all or one"):
        asked(None, "llm", per_request="each")


def test_prompt_tokens_are_those_of_the_prompt_the_tasks_build(tmp_path: Path) -> None:
    path = _file(tmp_path, TOPIC, AUDIENCE, fields=FIELDS)
    taskset = load_tasks(path)
    together = asked(path, "llm")
    assert together.prompt_tokens == count_prompt_tokens(
        build_task_messages(taskset.tasks, "", taskset.fields)
    )
    apart = asked(path, "llm", per_request="one")
    assert apart.requests == 3 and apart.prompt_tokens < together.prompt_tokens
    assert typical_answer(taskset.tasks, ()) == {
        "topic": "invoice",
        "audience": ["buyer", "cook"],
        "confidence": 0.87,
    }


def test_each_request_carries_the_text_so_per_task_costs_more() -> None:
    profile = Profile("t", 10, 0.01, 0.01, 4000.0, 4000.0, 50.0, {"sequential": Scaling("sequential", 1.0)})
    one = PlanInputs(docs=100, price_in=1.0, price_out=1.0, requests_per_doc=1, prompt_tokens=300)
    three = PlanInputs(docs=100, price_in=1.0, price_out=1.0, requests_per_doc=3, prompt_tokens=150)
    assert tokens_per_doc(profile, one) == (1000 + 300, 30)
    assert tokens_per_doc(profile, three) == (3 * (1000 + 150), 90)
    assert cost_per_doc(profile, three) > 2 * cost_per_doc(profile, one)
    limited = project(profile, profile.scaling["sequential"], replace(three, rpm=600, llm_latency_s=0.5))
    assert limited.limits["rate limit (rpm)"] == 600 / 60 / 3
    assert limited.in_flight == limited.docs_per_s * 0.5 * 3


def _plan(*extra: str) -> str:
    args = ["plan", "--docs", "100000", "--sample", str(CORPUS / "inbox"), "--strategies", "threads"]
    result = CliRunner().invoke(app, [*args, "--rpm", "600", "--price-in", "1", *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_plan_counts_a_tasks_own_llm_under_keywords(tmp_path: Path) -> None:
    path = _file(tmp_path, TOPIC, LANGUAGE, MOOD)
    together = _plan("--classifier", "keywords", "--labels", str(path))
    assert "LLM: 1 request and" in together and "answered locally: topic, language" in together
    apart = _plan("--classifier", "llm", "--labels", str(path), "--tasks-per-request", "one")
    assert "LLM: 2 requests and" in apart and "one request per task" in apart
    assert "600 requests/min" not in apart


def test_plan_with_only_local_tasks_counts_no_llm(tmp_path: Path) -> None:
    output = _plan("--classifier", "keywords", "--labels", str(_file(tmp_path, TOPIC, LANGUAGE)))
    assert "No LLM stage" in output and "Tasks: nothing is asked of the LLM" in output
