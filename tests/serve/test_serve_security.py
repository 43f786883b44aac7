"""Loopback by default, token elsewhere, read-only, same-origin only, no secrets served."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_kit import BASE_URL
from starlette.testclient import TestClient

from docmill.cli.main import main
from docmill.errors import ConfigError
from docmill.serve.app import create_app
from docmill.serve.security import REDACTED, check_bind, host_name, redact, redact_text

TOKEN = "s3cret-token-value"


@pytest.fixture
def guarded(journal_db: Path) -> Iterator[TestClient]:
    app = create_app(str(journal_db), token=TOKEN, host="0.0.0.0", extra_hosts=["dash.example"])
    with TestClient(app, base_url="http://dash.example:8765") as client:
        yield client


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_only_reads_are_allowed(client: TestClient, method: str) -> None:
    response = client.request(method, "/api/runs")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_head_is_allowed(client: TestClient) -> None:
    assert client.head("/api/runs").status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "[::2]:8765"]
)
def test_foreign_host_header_is_refused(client: TestClient, host: str) -> None:
    assert client.get("/api/runs", headers={"host": host}).status_code == 403


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST"])
def test_loopback_host_headers_are_accepted(client: TestClient, host: str) -> None:
    assert client.get("/api/runs", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8765"]
)
def test_foreign_origin_is_refused(client: TestClient, origin: str) -> None:
    assert client.get("/api/runs", headers={"origin": origin}).status_code == 403


def test_same_origin_is_accepted(client: TestClient) -> None:
    assert client.get("/api/runs", headers={"origin": BASE_URL}).status_code == 200


def test_pages_carry_a_strict_content_security_policy(client: TestClient) -> None:
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_token_is_required_everywhere(guarded: TestClient) -> None:
    for url in ["/", "/api/runs", "/metrics", "/healthz", "/static/app.js", "/api/openapi.json"]:
        response = guarded.get(url)
        assert response.status_code == 401, url
        assert response.headers["www-authenticate"] == "Bearer"
    assert guarded.get("/api/runs", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/api/runs", params={"token": TOKEN[:-1]}).status_code == 401


def test_token_as_bearer_or_query_and_then_cookie(guarded: TestClient) -> None:
    assert guarded.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    page = guarded.get("/", params={"token": TOKEN})
    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie  # the cookie holds a digest, not the token
    assert guarded.get("/api/runs").status_code == 200  # the client kept the cookie


def test_a_forged_cookie_is_refused(guarded: TestClient) -> None:
    guarded.cookies.set("docmill_token", TOKEN)  # the raw token is not the cookie's value
    assert guarded.get("/api/runs").status_code == 401
    guarded.cookies.set("docmill_token", 'x"; y=1')
    assert guarded.get("/api/runs").status_code == 401


def test_wide_bind_still_checks_host(guarded: TestClient) -> None:
    headers = {"authorization": f"Bearer {TOKEN}", "host": "rebound.evil.example"}
    assert guarded.get("/api/runs", headers=headers).status_code == 403


def test_binding_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "t")
    check_bind("::1", None)
    check_bind("localhost", None)


def test_cli_refuses_wide_bind_without_token(
    journal_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DOCMILL_SERVE_TOKEN", raising=False)
    assert main(["serve", "--db", str(journal_db), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "without a token" in err


def test_cli_refuses_a_missing_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", str(tmp_path / "nope.db")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no journal at" in err


def test_redact_keeps_env_var_names_and_drops_values() -> None:
    config = {
        "llm": {"api_key_env": "OPENAI_API_KEY", "api_key": "sk-abc", "tpm": 1000, "max_tokens_in": 900},
        "db": "postgresql://user:pw@db.example/docmill",
        "headers": {"Authorization": "Bearer abcdefghijklmnop"},
        "password": "x",
        "token": None,
    }
    shown = redact(config)
    assert shown["llm"] == {
        "api_key_env": "OPENAI_API_KEY",
        "api_key": REDACTED,
        "tpm": 1000,
        "max_tokens_in": 900,
    }
    assert shown["db"] == f"postgresql://user:{REDACTED}@db.example/docmill"
    assert shown["headers"]["Authorization"] == REDACTED
    assert shown["password"] == REDACTED and shown["token"] is None


def test_redact_an_env_field_holding_a_real_key() -> None:
    assert redact({"api_key_env": "sk-live-9f8e7d6c5b4a"}) == {"api_key_env": REDACTED}


def test_redact_text_removes_bearer_tokens_from_messages() -> None:
    message = "401 from https://api.example/v1 with Bearer abcdefghijkl1234"
    assert "abcdefghijkl1234" not in redact_text(message)


@pytest.mark.parametrize(
    ("netloc", "host"),
    [("127.0.0.1:8765", "127.0.0.1"), ("[::1]:80", "::1"), ("::1", "::1"), ("Example.COM", "example.com")],
)
def test_host_name(netloc: str, host: str) -> None:
    assert host_name(netloc) == host


def test_cli_reports_a_busy_port_in_one_line(journal_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--db", str(journal_db), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err


def test_cli_reports_an_unreachable_journal_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", "postgresql://docmill:pw@127.0.0.1:1/none", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pw@" not in err
