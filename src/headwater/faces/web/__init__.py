"""The browser face: server-rendered pages at ``/`` over the same core as the API.

Datasets (and their analysis), training with live progress, the leaderboard,
predictions and a draw-a-digit canvas. Pages are Jinja2 templates with a little
plain JavaScript from ``static/``; nothing is built. The pages call the flows
through the services the API's lifespan opened, and hold no logic of their own.
How writes are authorised is in `headwater.faces.web.access`.
"""

from __future__ import annotations

from headwater.faces.web.app import UPLOAD_PATH_PATTERN, mount

__all__ = ["UPLOAD_PATH_PATTERN", "mount"]
