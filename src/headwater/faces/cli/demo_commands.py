"""`headwater demo`: services to try Headwater on with no outside data."""

from __future__ import annotations

import sys
import threading

import typer

from headwater.faces.cli.output import console
from headwater.flows.keystroke_demo import keystroke_set, serve_keystrokes
from headwater.flows.params import MAX_SEED

__all__ = ["register"]

demo = typer.Typer(help="Demo services on loopback, to try Headwater with no outside data.")


def register(app: typer.Typer) -> None:
    app.add_typer(demo, name="demo")


@demo.command()
def keystrokes(
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port on 127.0.0.1."),
    users: int = typer.Option(30, "--users", min=2, max=500, help="Typists: one page each."),
    attempts: int = typer.Option(12, "--attempts", min=1, max=200, help="Attempts per typist."),
    seed: int = typer.Option(
        7, "--seed", min=0, max=MAX_SEED, help="Same seed, same typists and pages."
    ),
) -> None:
    """Serve a paginated keystroke-dynamics API on loopback until Ctrl-C.

    Example: headwater demo keystrokes --port 8765 --users 20
    """
    sets = [
        keystroke_set(users=users, attempts=attempts, seed=seed, part=part)
        for part in ("train", "test")
    ]
    with serve_keystrokes(sets, port=port) as base:
        for part in sets:
            console.print(
                f"{base}{part.first}  ({len(part.labels)} pages, {part.attempts} attempts, "
                f"{len(part.invalid)} invalid)",
                highlight=False,
                soft_wrap=True,
            )
        console.print(
            f"try: HEADWATER_FETCH_ALLOW_PRIVATE=true headwater ingest {base}{sets[0].first} "
            "--records user_data --label user_label --dataset typing",
            highlight=False,
            soft_wrap=True,
        )
        sys.stdout.flush()  # a script reading the URLs from a pipe gets them now
        threading.Event().wait()
