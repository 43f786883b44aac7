"""``docmill emulate`` as users start it: a real process on a port, stopped with SIGINT."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_emulate_serves_until_interrupted() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "docmill", "emulate", "--port", str(port), "--rpm", "7", "--window", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        stats = httpx.get(f"http://127.0.0.1:{port}/emulator/stats").json()
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert [m["id"] for m in models["data"]] == ["emulated-small", "emulated-large"]
    assert stats["config"]["rpm"] == 7 and stats["window"] == 2.0
    assert f"127.0.0.1:{port}" in out
    assert "Traceback" not in err
    assert process.returncode == 130
