"""`headwater serve`: the HTTP API under uvicorn."""

from __future__ import annotations

import typer

from headwater.settings import get_settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs).

    Writes need HEADWATER_API_TOKEN set. Example: headwater serve --host 0.0.0.0 --port 8000
    """
    import uvicorn

    from headwater.faces.api import create_app

    # timeout_graceful_shutdown: a live event stream must not hold SIGTERM off for ever
    uvicorn.run(
        create_app(get_settings()),
        host=host,
        port=port,
        proxy_headers=False,
        timeout_graceful_shutdown=3,
    )
