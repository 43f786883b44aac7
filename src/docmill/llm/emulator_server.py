"""Serve an :class:`~docmill.llm.emulator.Emulator` over HTTP/1.1 on loopback.

A small asyncio server rather than a framework, because the faults need what frameworks hide:
closing a connection without a reply, or sending half a body. Keep-alive and ``Content-Length``
bodies are supported, which is all an HTTP client of a chat API uses.

``EmulatorServer`` runs it in a background thread on a free port (tests, benchmarks);
``serve_forever`` runs it in the foreground (``docmill emulate``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import urllib.request
from types import TracebackType
from typing import Any

from docmill._signals import handled_signals
from docmill.llm.emulator import Emulator, EmulatorConfig, Reply

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
_REASONS |= {500: "Internal Server Error", 503: "Service Unavailable", 529: "Overloaded"}
_MAX_HEAD = 64 * 1024


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return method, path, headers, body


def _encode(reply: Reply, body: bytes) -> bytes:
    head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
    headers = {"content-length": str(len(reply.body)), "server": "docmill-emulator", **reply.headers}
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class _Connection:
    """One client connection: read a request, answer it, repeat while kept alive.

    Keeps the tasks serving connections, so that stopping can cancel them (a hanging reply sleeps
    for ``hang_seconds``): since Python 3.12 a server's ``wait_closed`` waits for every connection.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping
        finally:
            if task is not None:
                self.tasks.discard(task)
            writer.close()

    def cancel_all(self) -> None:
        """Cancel every connection still being served."""
        for task in list(self.tasks):
            task.cancel()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        request = await _read_request(reader)
        if request is None:
            return False
        reply = await self.emulator.handle(*request)
        if reply.action == "drop":
            return False
        body = reply.body[: len(reply.body) // 2] if reply.action == "truncate" else reply.body
        writer.write(_encode(reply, body))
        await writer.drain()
        return reply.action == "send" and request[2].get("connection", "").lower() != "close"


async def _serve(
    emulator: Emulator, host: str, port: int, started: threading.Event | None, holder: dict[str, Any]
) -> None:
    connections = _Connection(emulator)
    server = await asyncio.start_server(connections, host, port, backlog=1024)
    holder["port"] = server.sockets[0].getsockname()[1]
    holder.setdefault("stop", asyncio.Event())
    if started is not None:
        started.set()
    try:
        await holder["stop"].wait()
    finally:  # stopped, or interrupted (serve_forever): close the connections, then the server
        server.close()
        connections.cancel_all()
        await server.wait_closed()


def serve_forever(config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve in the foreground until SIGINT, SIGTERM or SIGHUP; then raise ``KeyboardInterrupt``.

    The signals stop the loop from within (a signal raising in the loop would break the task it
    lands in); the handlers in place before are restored afterwards.
    """
    previous = {sig: signal.getsignal(sig) for sig in handled_signals()}
    try:
        asyncio.run(_serve_until_signalled(Emulator(config), host, port))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    raise KeyboardInterrupt


async def _serve_until_signalled(emulator: Emulator, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in handled_signals():
        loop.add_signal_handler(sig, stop.set)
    await _serve(emulator, host, port, None, {"stop": stop})


class EmulatorServer:
    """An emulator on a free loopback port in a background thread; a context manager.

    >>> with EmulatorServer(EmulatorConfig(rpm=60, window=1.0)) as server:
    ...     client = LLMClient(server.url + "/v1", ...)
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.emulator = Emulator(config)
        self.host = host
        self._holder: dict[str, Any] = {"port": port}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (append ``/v1`` for OpenAI clients)."""
        return f"http://{self.host}:{self._holder['port']}"

    def start(self) -> EmulatorServer:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()
        coro = _serve(self.emulator, self.host, self._holder["port"], started, self._holder)
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(coro,), name="docmill-emulator", daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the emulator did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._holder["stop"].set)
        self._thread.join(10)
        if self._thread.is_alive():  # never close a loop that still runs: leave the daemon thread be
            raise RuntimeError("the emulator did not stop within 10 s")
        self._cancel_leftovers()
        self._loop.close()
        self._loop = self._thread = None

    def _cancel_leftovers(self) -> None:
        """Hanging handlers still sleep: cancel them so the loop can close cleanly."""
        assert self._loop is not None
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

    def stats(self, *, arrivals: bool = False) -> dict[str, Any]:
        """``GET /emulator/stats`` over real HTTP."""
        suffix = "?arrivals=1" if arrivals else ""
        with urllib.request.urlopen(f"{self.url}/emulator/stats{suffix}", timeout=10) as response:
            result: dict[str, Any] = json.load(response)
        return result

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/emulator/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
