"""Schemathesis drives every operation of the served OpenAPI spec: no 500s, responses match the spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from docmill.serve.app import create_app

pytestmark = pytest.mark.filterwarnings("ignore")  # hypothesis/schemathesis chatter is not ours


def test_api_survives_generated_requests(journal_db: Path) -> None:
    app = create_app(str(journal_db), extra_hosts=["testserver"])  # the ASGI test client's Host
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    failures: list[str] = []
    for operation in schema.get_all_operations():
        op = operation.ok()  # type: ignore[union-attr]  # an Err would raise here, failing the test

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: Any) -> None:
            case.call_and_validate(checks=checks)

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{op.method.upper()} {op.path}: {exc}")
    assert not failures, "\n\n".join(failures)
