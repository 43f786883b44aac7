"""The emulator's rate limits as a client reads them: header styles, resets, and ``quantize``."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from docmill.errors import ConfigError
from docmill.limits.headers import parse_duration, parse_time, read_headers
from docmill.llm.emulator import Emulator, EmulatorConfig, Reply
from docmill.llm.prompt import LabelSpec, build_messages
from docmill.testing import FakeClock

BODY = json.dumps(
    {
        "model": "emulated-small",
        "messages": build_messages([LabelSpec("a", "A."), LabelSpec("b", "B.")], "text"),
    }
).encode()


def _emulator(**config: object) -> tuple[Emulator, FakeClock]:
    clock = FakeClock()
    settings = {"rpm": 10, "tpm": 0, "window": 60.0, "latency_median": 0.0, **config}
    return Emulator(EmulatorConfig(**settings), clock=clock), clock  # type: ignore[arg-type]


def _post(emulator: Emulator) -> Reply:
    return asyncio.run(emulator.handle("POST", "/v1/chat/completions", {}, BODY))


def test_openai_resets_say_when_the_budget_is_whole_again_in_go_notation() -> None:
    emulator, clock = _emulator()
    _post(emulator)
    clock.advance(20.0)
    reply = _post(emulator)
    assert reply.headers["x-ratelimit-limit-requests"] == "10"
    assert reply.headers["x-ratelimit-remaining-requests"] == "8"
    assert reply.headers["x-ratelimit-reset-requests"] == "1m0s"  # the newest request leaves in 60 s
    clock.advance(15.5)
    assert emulator.limit_headers(clock.monotonic())["x-ratelimit-reset-requests"] == "44.5s"
    assert parse_duration("44.5s") == 44.5


def test_anthropic_style_headers_carry_rfc3339_resets_and_only_retry_after() -> None:
    emulator, clock = _emulator(limit_headers="anthropic", rpm=2)
    replies = [_post(emulator) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 429]
    headers = replies[-1].headers
    assert headers["anthropic-ratelimit-requests-limit"] == "2"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert parse_time(headers["anthropic-ratelimit-requests-reset"]) == pytest.approx(
        clock.wall() + 60, abs=0.01
    )
    assert headers["retry-after"] == "60" and "retry-after-ms" not in headers
    assert not any(name.startswith("x-ratelimit") for name in headers)
    assert read_headers(headers, now=clock.wall()).requests.limit == 2


def test_limit_headers_can_be_left_out_but_a_429_still_says_when() -> None:
    emulator, _ = _emulator(limit_headers="none", rpm=1)
    ok, throttled = _post(emulator), _post(emulator)
    assert not any("ratelimit" in name for name in ok.headers)
    assert throttled.status == 429 and throttled.headers["retry-after"] == "60"
    assert not read_headers(throttled.headers, now=0.0).told


def test_quantize_enforces_the_limit_per_second_as_well() -> None:
    emulator, clock = _emulator(rpm=120, quantize=True)  # 2 a second, 120 a minute
    assert [_post(emulator).status for _ in range(3)] == [200, 200, 429]
    clock.advance(1.0)
    assert [_post(emulator).status for _ in range(3)] == [200, 200, 429]
    assert emulator.stats()["config"]["quantize"] is True
    plain, _ = _emulator(rpm=120)
    assert [_post(plain).status for _ in range(3)] == [200, 200, 200]


def test_quantize_scales_with_a_short_window() -> None:
    emulator, clock = _emulator(rpm=120, window=2.0, quantize=True)  # a "minute" of 2 s: 2 per 1/30 s
    assert [_post(emulator).status for _ in range(3)] == [200, 200, 429]
    clock.advance(2.0 / 60)
    assert _post(emulator).status == 200


def test_unknown_header_style_is_refused() -> None:
    with pytest.raises(ConfigError, match="limit_headers"):
        EmulatorConfig(limit_headers="azure")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_emulate_command_takes_the_header_style_and_quantize() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "docmill", "emulate", "--port", str(port), "--rpm", "60"]
    command += ["--limit-headers", "none", "--quantize", "--latency-median", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                replies = [
                    httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=BODY, timeout=5)
                    for _ in range(2)
                ]
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        stats = httpx.get(f"http://127.0.0.1:{port}/emulator/stats").json()
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
    assert [r.status_code for r in replies] == [200, 429]  # 1 a second
    assert "x-ratelimit-limit-requests" not in replies[0].headers
    assert stats["config"]["limit_headers"] == "none" and stats["config"]["quantize"] is True
    assert "per second too" in out


def test_every_emulator_setting_has_its_flag() -> None:
    import dataclasses
    import inspect

    from docmill.cli.emulate import emulate

    flags = set(inspect.signature(emulate).parameters)
    settings = {f.name for f in dataclasses.fields(EmulatorConfig)}
    assert settings - flags == {"models", "hang_seconds", "api_key"}  # the key comes by --api-key-env
