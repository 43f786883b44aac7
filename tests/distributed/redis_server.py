"""A Redis server of the test's own, to freeze, kill and restart without touching the shared one.

Started with no persistence (``--save '' --appendonly no``): a restart loses every key, the
queued chunks included, which is the case the distributed strategy must detect and repair.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on ``port``, bound to ``binds``; ``kill``/``start`` restart it empty."""

    def __init__(
        self, workdir: Path, *, port: int | None = None, binds: Sequence[str] = ("127.0.0.1",)
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.binds = list(binds)
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def url(self, host: str | None = None, db: int = 0) -> str:
        return f"redis://{host or self.binds[0]}:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.binds[0], port=self.port, socket_connect_timeout=2)

    def start(self) -> None:
        argv = [
            "redis-server", "--port", str(self.port), "--bind", " ".join(self.binds), "--save", "",
            "--appendonly", "no", "--enable-debug-command", "yes", "--dir", str(self.workdir),
            "--protected-mode", "no", "--loglevel", "warning",
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client().ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL, as a crashed host would: nothing is saved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, down: float = 0.0) -> None:
        self.kill()
        time.sleep(down)
        self.start()
        self.restarts += 1

    def freeze(self, seconds: float) -> threading.Thread:
        """``DEBUG SLEEP seconds`` from a thread (the command blocks its caller too)."""

        def sleep() -> None:
            client = redis.Redis(host=self.binds[0], port=self.port, socket_timeout=seconds + 30)
            client.execute_command("DEBUG", "SLEEP", seconds)  # type: ignore[no-untyped-call]
            client.close()

        thread = threading.Thread(target=sleep, daemon=True)
        thread.start()
        return thread


@contextmanager
def redis_server(workdir: Path, binds: Sequence[str] = ("127.0.0.1",)) -> Iterator[RedisServer]:
    """A started server, killed on exit; skips in one line when ``redis-server`` is missing."""
    import pytest

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(workdir, binds=binds)
    server.start()
    try:
        yield server
    finally:
        server.kill()
