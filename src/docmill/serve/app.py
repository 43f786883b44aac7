"""The dashboard application: one static page, the JSON API, ``/metrics``, behind ``Guard``.

``create_app(target)`` builds it over a journal target (a SQLite path or ``postgresql://…``);
``serve(...)`` runs it with uvicorn. Nothing here writes to the journal.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import ConfigError, DocmillError
from docmill.journal.base import Journal
from docmill.serve import prometheus
from docmill.serve.api import Api
from docmill.serve.gateway import Gateway
from docmill.serve.openapi import spec
from docmill.serve.params import JSON, error
from docmill.serve.security import Guard, allowed_hosts, check_bind, redact_text

STATIC = Path(__file__).with_name("static")


def _opener(target: str | Journal) -> Callable[[], Journal]:
    if not isinstance(target, str):
        return lambda: target

    def open_target() -> Journal:
        from docmill.journal import open_journal

        return open_journal(target, read_only=True)

    return open_target


def create_app(
    target: str | Journal,
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    extra_hosts: Iterable[str] = (),
    clock: Clock = SYSTEM_CLOCK,
) -> Starlette:
    """The dashboard over ``target``; ``host`` is the address it will listen on (for the Host check)."""
    check_bind(host, token)
    gateway = Gateway(_opener(target), clock=clock)
    api = Api(gateway, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        gateway.close()

    routes = [
        Route("/", _index, methods=["GET", "HEAD"]),
        Route("/api/openapi.json", _openapi, methods=["GET", "HEAD"]),
        Route("/metrics", prometheus.endpoint(gateway, clock), methods=["GET", "HEAD"]),
        *api.routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    guard = Middleware(Guard, hosts=allowed_hosts(host, extra_hosts), token=token)
    handlers = {DocmillError: _unavailable, Exception: _internal}
    app = Starlette(routes=routes, middleware=[guard], lifespan=lifespan, exception_handlers=handlers)
    app.state.gateway = gateway
    return app


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})


async def _openapi(request: Request) -> Response:
    return JSON(spec())


async def _unavailable(request: Request, exc: Exception) -> Response:
    """A journal that cannot be read is a 503 with one line, not a traceback page."""
    return error(503, f"journal unavailable: {redact_text(str(exc))}")


async def _internal(request: Request, exc: Exception) -> Response:
    return error(500, f"internal error: {type(exc).__name__}")


def serve(
    target: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    extra_hosts: Iterable[str] = (),
    ready: Callable[[], object] = lambda: None,
) -> None:
    """Run the dashboard until interrupted; ``ready()`` is called once it listens. A journal that
    cannot be read, or an address that cannot be bound, is a one-line error before anything is served."""
    import uvicorn

    app = create_app(target, token=token, host=host, extra_hosts=extra_hosts)
    try:
        app.state.gateway.call_sync(lambda journal: journal.runs())  # fail now, not on the first request
        sock = _listen(host, port)
    except BaseException:
        app.state.gateway.close()
        raise
    ready()
    config = uvicorn.Config(app, log_level="warning", server_header=False, proxy_headers=False)
    uvicorn.Server(config).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock
