"""What keeps the dashboard safe to run: loopback by default, a token elsewhere, read-only, no secrets.

``Guard`` is a plain ASGI middleware that refuses, in order: methods other than GET/HEAD (405), a
``Host`` header naming a host this server does not answer for (403, DNS rebinding), a foreign
``Origin`` (403), and, when a token is set, requests without it (401). A good ``?token=`` on a page
load sets a ``SameSite=Strict`` cookie so that the page's own requests and export links carry it.

``redact`` strips secret-looking values from run configs and messages before they are served.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import socket
from collections.abc import Iterable, Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docmill.errors import ConfigError

TOKEN_COOKIE = "docmill_token"
READ_METHODS = frozenset({"GET", "HEAD"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|passw(or)?d|passwd|credential|authorization|private[_-]?key|(^|[_-])(token|auth|key)($|[_-]))",
    re.IGNORECASE,
)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^/@:\s]*):[^/@\s]*@", re.IGNORECASE)
_BEARER = re.compile(r"\b(bearer\s+|sk-|key-)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
REDACTED = "[redacted]"


def is_loopback(host: str) -> bool:
    """True when ``host`` (a name or an address) can only be reached from this machine."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to serve on {host} without a token; pass --token or set DOCMILL_SERVE_TOKEN"
        )


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names a browser may legitimately put in ``Host:`` for a server bound to ``bind``."""
    names = set(LOOPBACK_NAMES) | {bind.strip("[]").lower()} | {h.lower() for h in extra}
    if bind in ("0.0.0.0", "::", ""):
        names |= _this_machine_names()
    return frozenset(names)


def _this_machine_names() -> set[str]:
    import psutil

    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    for addresses in psutil.net_if_addrs().values():
        names.update(a.address.split("%")[0].lower() for a in addresses if a.family in _INET)
    return names


_INET = (socket.AF_INET, socket.AF_INET6)


def host_name(netloc: str) -> str:
    """The host part of a ``Host`` header or URL netloc, without port or brackets, lower-cased."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def tokens_equal(given: str, expected: str) -> bool:
    """Compare in constant time."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


class Guard:
    """ASGI middleware enforcing the rules in the module docstring."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str], token: str | None = None) -> None:
        self.app = app
        self.hosts = hosts
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _send_error(send, *refusal)
            return
        await self.app(scope, receive, self._sender(send, scope))

    def _refusal(self, scope: Scope, headers: Mapping[str, str]) -> tuple[int, str, list[Any]] | None:
        if scope["method"] not in READ_METHODS:
            return 405, "read-only: only GET and HEAD are allowed", [(b"allow", b"GET, HEAD")]
        if host_name(headers.get("host", "")) not in self.hosts:
            return 403, "unknown Host header", []
        origin = headers.get("origin")
        if origin is not None and not self._same_origin(origin, scope, headers.get("host", "")):
            return 403, "cross-origin requests are refused", []
        if self.token and not self._has_token(scope, headers):
            return 401, "a token is required", [(b"www-authenticate", b"Bearer")]
        return None

    def _same_origin(self, origin: str, scope: Scope, host: str) -> bool:
        parts = urlsplit(origin.lower())
        same = parts.scheme == scope.get("scheme", "http") and parts.netloc == host.lower()
        return same and host_name(parts.netloc) in self.hosts

    def _has_token(self, scope: Scope, headers: Mapping[str, str]) -> bool:
        assert self.token is not None
        if any(tokens_equal(given, self.token) for given in _offered_tokens(scope, headers)):
            return True
        cookie = _cookie_value(headers)
        return cookie is not None and tokens_equal(cookie, cookie_digest(self.token))

    def _sender(self, send: Send, scope: Scope) -> Send:
        set_cookie = self.token is not None and _query_token(scope) is not None

        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = _security_headers()
                if set_cookie:
                    extra.append((b"set-cookie", _cookie(self.token or "")))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return sender


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _query_token(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    return dict(parse_qsl(query, keep_blank_values=True)).get("token")


def _offered_tokens(scope: Scope, headers: Mapping[str, str]) -> list[str]:
    offered = []
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        offered.append(auth[7:].strip())
    query = _query_token(scope)
    if query is not None:
        offered.append(query)
    return offered


def _cookie_value(headers: Mapping[str, str]) -> str | None:
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is simply no token
        return None
    return cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None


def cookie_digest(token: str) -> str:
    """What the cookie holds: a digest of the token (cookie-safe, and not the token itself)."""
    return hashlib.sha256(b"docmill-serve-cookie\0" + token.encode("utf-8")).hexdigest()


def _cookie(token: str) -> bytes:
    return f"{TOKEN_COOKIE}={cookie_digest(token)}; Path=/; HttpOnly; SameSite=Strict".encode("ascii")


def _security_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]


async def _send_error(send: Send, status: int, detail: str, headers: list[Any]) -> None:
    body = json.dumps({"detail": detail}).encode()
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": base + headers})
    await send({"type": "http.response.body", "body": body})


def redact(value: Any, key: str = "") -> Any:
    """``value`` with secret-looking entries replaced; env-var *names* (``api_key_env``) are kept."""
    if _is_secret(key, value):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _is_secret(key: str, value: Any) -> bool:
    if not key or not _SECRET_KEY.search(key) or value is None or isinstance(value, bool | int | float):
        return False
    is_env_name = key.lower().endswith("_env") and isinstance(value, str) and _ENV_NAME.match(value)
    return not is_env_name


def redact_text(text: str) -> str:
    """``text`` without URL passwords or bearer-like tokens."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    return _BEARER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
