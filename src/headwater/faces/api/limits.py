"""A request body limit that counts bytes as they arrive, as a pure ASGI middleware.

Pure ASGI (not ``BaseHTTPMiddleware``) so the body is never buffered: uploads
stream through untouched until they pass the limit. A declared
``Content-Length`` over the limit is refused before a byte is read; a chunked
body is refused the moment its running count passes it, whatever the endpoint
was doing with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headwater.faces.api.problems import problem_response

__all__ = ["BodyLimit", "BodySizeLimit"]


@dataclass(frozen=True)
class BodyLimit:
    """A body limit, and the setting a user changes to move it."""

    max_bytes: int
    setting: str
    what: str = "request body"


class _BodyTooLarge(Exception):
    """Raised into the app from `receive`; the middleware answers for it."""


@dataclass
class _Tally:
    seen: int = 0
    over: bool = False
    started: bool = False


class BodySizeLimit:
    """Answer 413 as a problem once a request body passes its limit.

    ``special`` maps path patterns (e.g. uploads) to their own, larger limits.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: BodyLimit,
        special: tuple[tuple[re.Pattern[str], BodyLimit], ...] = (),
    ) -> None:
        self.app = app
        self.default = default
        self.special = special

    def limit_for(self, path: str) -> BodyLimit:
        for pattern, limit in self.special:
            if pattern.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit.max_bytes:
            await self._refuse(scope, send, limit)
            return
        tally = _Tally()

        async def counted_receive() -> Message:
            if tally.over:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                tally.seen += len(message.get("body", b""))
                if tally.seen > limit.max_bytes:
                    tally.over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Once over the limit, whatever the app answers instead (FastAPI turns a
            # failed body read into a 400) is dropped for our 413.
            if tally.over:
                return
            if message["type"] == "http.response.start":
                tally.started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            # Only what the limit caused is ours to answer; anything else goes on up.
            if not tally.over:
                raise
        if tally.over and not tally.started:
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: BodyLimit) -> None:
        response = problem_response(
            413,
            "Request too large",
            f"the {limit.what} is larger than the {limit.max_bytes:,}-byte limit "
            f"({limit.setting}); send less, or raise the limit",
            instance=scope["path"],
            limit=limit.max_bytes,
            setting=limit.setting,
        )

        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, nothing, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
