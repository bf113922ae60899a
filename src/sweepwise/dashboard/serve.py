"""Serve the dashboard with uvicorn (`sweepwise dashboard`)."""

from __future__ import annotations

from collections.abc import Callable

from sweepwise.core.errors import ConfigError
from sweepwise.dashboard.app import DashboardSettings, build_app
from sweepwise.dashboard.security import is_loopback, new_token


def address(host: str, port: int, token: str | None) -> str:
    """The URL a person opens: with `?token=` when there is one (visiting it sets the cookie)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def plan(host: str, port: int, token: str | None) -> str | None:
    """The token the dashboard will ask for: `token`, or a new one when `host` is not loopback.

    Raises:
        ConfigError: the port is out of range, or the token is empty.
    """
    if not 0 < port < 65536:
        raise ConfigError("--port", f"{port} is not a TCP port; give one from 1 to 65535")
    if token is not None and not token.strip():
        raise ConfigError("--token", "is empty; give a token, or leave --token out to get one generated")
    if token is None and not is_loopback(host):
        return new_token()
    return token


def serve(store_url: str, host: str, port: int, token: str | None, say: Callable[[str], None]) -> None:
    """Run the dashboard until interrupted; `say` gets the address to open (with its token)."""
    import uvicorn

    token = plan(host, port, token)
    app = build_app(DashboardSettings(store_url=store_url, token=token, loopback_only=token is None))
    say(f"sweepwise dashboard on {address(host, port, token)} (store {store_url}); Ctrl-C stops it")
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = ["address", "plan", "serve"]
