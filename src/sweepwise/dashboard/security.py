"""Who may use the dashboard: a token when it listens beyond this machine (docs/dashboard.md, "Security").

The token is accepted from an `Authorization: Bearer` or `X-Sweepwise-Token` header, a
`token` query parameter, or the cookie that visiting with `?token=` sets. Actions (POST)
carry it in their form too, so another site's page cannot post to the dashboard through
a visitor's browser.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "sweepwise_token"
HEADER = "x-sweepwise-token"


def is_loopback(host: str) -> bool:
    """True when `host` (an address or `localhost`) is only reachable from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def new_token() -> str:
    """A fresh random token (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def same_token(given: str | None, token: str) -> bool:
    """Whether `given` is `token`, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def request_token(scope: Scope) -> tuple[str | None, bool]:
    """The token a request carries and whether it came in the query string (then it is set as a cookie)."""
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", [])}
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    if HEADER in headers:
        return headers[HEADER], False
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "token" in query:
        return query["token"][0], True
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header: no token
        return None, False
    return (cookie[COOKIE].value if COOKIE in cookie else None), False


_DENIED = (
    b"<!doctype html><title>401 token needed</title><h1>401: this dashboard needs its token</h1>"
    b"<p>Open the address <code>sweepwise dashboard</code> printed when it started (it ends in "
    b"<code>?token=...</code>), or send the token in an <code>Authorization: Bearer</code> header.</p>"
)


class TokenGate:
    """ASGI middleware: every HTTP request without the token gets 401.

    Args:
        app: the app behind the gate.
        token: the token; None lets every request through (a dashboard on loopback without --token).
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None:
            await self.app(scope, receive, send)
            return
        given, from_query = request_token(scope)
        if not same_token(given, self.token):
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"text/html; charset=utf-8"),
                        (b"www-authenticate", b'Bearer realm="sweepwise"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _DENIED})
            return
        if not from_query:
            await self.app(scope, receive, send)
            return
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode("latin-1")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
"""The Host names a dashboard on loopback without a token answers to."""

_MISDIRECTED = (
    b"<!doctype html><title>421 wrong host</title><h1>421: this dashboard answers on its own address</h1>"
    b"<p>Open it at 127.0.0.1 or localhost, as <code>sweepwise dashboard</code> printed.</p>"
)


def host_name(scope: Scope) -> str:
    """The request's Host header without its port (`[::1]:8080` is `::1`)."""
    for key, value in scope.get("headers", []):
        if key == b"host":
            host = str(bytes(value).decode("latin-1")).strip().lower()
            if host.startswith("["):
                return host[1 : host.find("]")] if "]" in host else host
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""


class LoopbackHostGate:
    """ASGI middleware: a request whose Host is not a loopback name gets 421.

    A dashboard on loopback without a token trusts whoever can reach the port. A web page on
    another site can reach it too, through DNS rebinding (its own name made to point at
    127.0.0.1), but its requests then carry that name as Host; this gate refuses them
    (docs/dashboard.md, "Security").
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and host_name(scope) not in LOOPBACK_NAMES:
            headers = [(b"content-type", b"text/html; charset=utf-8")]
            await send({"type": "http.response.start", "status": 421, "headers": headers})
            await send({"type": "http.response.body", "body": _MISDIRECTED})
            return
        await self.app(scope, receive, send)


__all__ = [
    "COOKIE",
    "HEADER",
    "LOOPBACK_NAMES",
    "LoopbackHostGate",
    "TokenGate",
    "host_name",
    "is_loopback",
    "new_token",
    "request_token",
    "same_token",
]
