"""Refuse URLs that would make the server fetch from itself or its private network.

Without this, anyone holding the write token could read cloud metadata or
internal services through ``POST /datasets/{name}/sources``. The host is
resolved and every address it resolves to must be public, unless
``HEADWATER_API_ALLOW_PRIVATE_URLS`` is set (a lab with an internal file server).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

from headwater.errors import FormatError, UnsafeInput

__all__ = ["check_public_url"]


def check_public_url(url: str, *, allow_private: bool) -> None:
    """Raise `UnsafeInput` for a URL whose host is loopback, private, link-local or reserved."""
    parts = urlparse(url)
    host = parts.hostname
    if not host:
        raise FormatError("the URL names no host", path=url)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise FormatError(f"the host {host!r} cannot be resolved ({exc})", path=url) from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise UnsafeInput(
                f"the host {host!r} resolves to the non-public address {address}; the server "
                "does not fetch from its own network unless HEADWATER_API_ALLOW_PRIVATE_URLS=true",
                path=url,
            )
