"""`headwater serve`: the HTTP API and the web UI under uvicorn.

On a loopback address with no ``HEADWATER_API_TOKEN`` the server makes its own token
for this run and prints a login URL (``http://127.0.0.1:8000/?token=...``), as Jupyter
does: whoever can read the terminal can open it and train from the browser, and no one
else on the machine's network can reach the server anyway. On any other address with
no token it stays read-only.
"""

from __future__ import annotations

import ipaddress
import secrets
import sys
import threading
import time

import typer
from pydantic import SecretStr

from headwater.faces.cli.output import console
from headwater.settings import Settings, get_settings

__all__ = ["is_loopback", "login_url", "register"]


def register(app: typer.Typer) -> None:
    app.command()(serve)


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``: only this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _base_url(host: str, port: int) -> str:
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}"


def login_url(host: str, port: int, token: str) -> str:
    """The URL that signs a browser in with ``token`` (see `faces.web.access.token_login`)."""
    return f"{_base_url(host, port)}/?token={token}"


def _with_token(settings: Settings, host: str) -> tuple[Settings, str | None]:
    """Settings with a fresh token when the server is loopback-only and has none."""
    if settings.api_token is not None or not is_loopback(host):
        return settings, None
    token = secrets.token_urlsafe(24)
    return settings.model_copy(update={"api_token": SecretStr(token)}), token


def _announcement(settings: Settings, host: str, port: int, token: str | None) -> str:
    base = _base_url(host, port)
    if token is not None:
        return (
            f"Headwater is serving at {base} (API docs at {base}/docs).\n"
            "To ingest and train from the browser, open this URL; it signs you in with a "
            "token made for this run (set HEADWATER_API_TOKEN to choose your own):\n"
            f"    {login_url(host, port, token)}"
        )
    if settings.api_token is None:
        return (
            f"Headwater is serving at {base}, read-only: {host} is not a loopback address "
            "and HEADWATER_API_TOKEN is not set, so nothing can be ingested or trained here."
        )
    return f"Headwater is serving at {base}; log in with HEADWATER_API_TOKEN at {base}/ui/login"


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    schedule: bool = typer.Option(
        False, "--schedule", help="Also run the declared pipelines, as headwater schedule does."
    ),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) and the web UI at /.

    On 127.0.0.1 without HEADWATER_API_TOKEN it prints a login URL with a token made for
    this run; elsewhere, writes need HEADWATER_API_TOKEN.
    Example: headwater serve --host 127.0.0.1 --port 8000
    """
    import uvicorn

    from headwater.faces.api import create_app

    settings, token = _with_token(get_settings(), host)
    # timeout_graceful_shutdown: a live event stream must not hold SIGTERM off for ever
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=False,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    message = _announcement(settings, host, port, token)

    def announce() -> None:  # once the socket listens, so the URL works when it is shown
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            console.print(message, highlight=False, soft_wrap=True, markup=False)
            sys.stdout.flush()

    threading.Thread(target=announce, name="announce", daemon=True).start()
    stop = threading.Event()
    if schedule:
        from headwater.flows.scheduler import run_scheduler

        threading.Thread(
            target=run_scheduler, args=[settings, stop], name="scheduler", daemon=True
        ).start()
    try:
        server.run()
    finally:
        stop.set()
