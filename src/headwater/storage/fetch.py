"""Fetch a file from an http(s) URL into the lake's staging folder: streamed, size-limited, and
never from the machine's own network.

Every source that reads a URL (the CLI, the API, the web page, and sources to come) goes
through `download`, so the SSRF guard lives here and nowhere else:

- only ``http`` and ``https`` are fetched, on the first hop and after every redirect;
- redirects are followed by hand, at most `MAX_REDIRECTS`, and every hop's host is resolved
  **once** and each of its addresses checked (`refusal`): loopback, private, link-local,
  multicast, reserved and unspecified addresses are refused, IPv4 and IPv6 alike, including
  IPv4 addresses carried inside IPv6 ones (``::ffff:10.0.0.1``, 6to4, Teredo, NAT64);
- the connection goes to the address that was checked: the request is sent to the IP, with
  the ``Host`` header and the TLS server name (``sni_hostname``) set to the host's name, so
  certificates are still verified against the name and no second lookup can be answered
  differently (DNS rebinding);
- environment proxies are ignored (``trust_env=False``): a proxy would resolve the name itself.

``allow_private`` (``HEADWATER_FETCH_ALLOW_PRIVATE``) admits loopback and private addresses,
for a lab with an internal file server and for tests; link-local (cloud metadata at
169.254.169.254), multicast, reserved and unspecified addresses stay refused even then.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from headwater.errors import (
    AccessDenied,
    FormatError,
    LocationNotFound,
    StorageError,
    UnsafeInput,
    UploadTooLarge,
)
from headwater.storage.lake import full_disk_said
from headwater.storage.readers.base import check_file_name

__all__ = [
    "MAX_REDIRECTS",
    "Fetched",
    "IPAddress",
    "Resolver",
    "download",
    "fetch",
    "is_url",
    "refusal",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""Turns ``(host, port)`` into the addresses it names; tests pass a stub."""

MAX_REDIRECTS = 5
SCHEMES = frozenset({"http", "https"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_ALLOW_HINT = "HEADWATER_FETCH_ALLOW_PRIVATE=true"


def is_url(text: str) -> bool:
    return urlparse(text).scheme in SCHEMES


def refusal(address: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why ``address`` may not be fetched from, or None when it may.

    An IPv6 address that carries an IPv4 one is judged by the IPv4 address inside it.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return refusal(inner, allow_private=allow_private)
    for kind in ("unspecified", "multicast", "link_local"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if address.is_loopback:
        return None if allow_private else "loopback"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return None if allow_private else "private"
    return None if address.is_global else "private"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def download(
    url: str,
    staging: Path,
    *,
    max_bytes: int,
    allow_private: bool = False,
    timeout_s: float = 60.0,
    resolve: Resolver = system_resolver,
    transport: httpx.BaseTransport | None = None,
) -> Path:
    """Download ``url`` to ``staging/<random>/<name>``, keeping the name so its format is known.

    ``resolve`` and ``transport`` are for tests (a stub resolver, an `httpx.MockTransport`).
    """
    name = unquote(Path(urlparse(url).path).name)
    if not name:
        raise FormatError("the URL names no file; end it with the file name", path=url)
    check_file_name(name, path=url)
    client = httpx.Client(
        transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False
    )
    folder: Path | None = None
    try:
        with client:
            response = _open(client, url, allow_private=allow_private, resolve=resolve)
            try:
                folder = staging / f"download-{uuid.uuid4().hex}"
                folder.mkdir(parents=True)
                _save(response, folder / name, url=url, max_bytes=max_bytes)
            finally:
                response.close()
    except httpx.HTTPError as exc:
        _discard(folder)
        raise StorageError(url, f"could not download ({exc})") from exc
    except BaseException:
        _discard(folder)
        raise
    return folder / name


@dataclass(frozen=True)
class Fetched:
    """One answer read whole: the URL it came from after redirects, its status, headers, bytes."""

    url: str
    status: int
    headers: httpx.Headers
    content: bytes


def fetch(
    client: httpx.Client,
    url: str,
    *,
    max_bytes: int,
    allow_private: bool = False,
    resolve: Resolver = system_resolver,
) -> Fetched:
    """GET ``url`` whole through the same guard as `download`, for pages of an API.

    Unlike `download` it does not refuse an error status: the caller decides what a 429 or
    503 means (a retry) and what a 404 means. ``client`` must not follow redirects itself.
    """
    response, final = _follow(client, url, allow_private=allow_private, resolve=resolve)
    try:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise UploadTooLarge(max_bytes, url)
        body = bytearray()
        for chunk in response.iter_bytes(1 << 20):
            body += chunk
            if len(body) > max_bytes:
                raise UploadTooLarge(max_bytes, url)
    finally:
        response.close()
    return Fetched(str(final), response.status_code, response.headers, bytes(body))


def _discard(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _save(response: httpx.Response, target: Path, *, url: str, max_bytes: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise UploadTooLarge(max_bytes, url)
    size = 0
    with full_disk_said(target), target.open("wb") as sink:
        for chunk in response.iter_bytes(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge(max_bytes, url)
            sink.write(chunk)


def _open(
    client: httpx.Client, url: str, *, allow_private: bool, resolve: Resolver
) -> httpx.Response:
    """The streamed answer at the end of ``url``'s redirects, each hop checked before it is sent."""
    response, _final = _follow(client, url, allow_private=allow_private, resolve=resolve)
    _refuse_status(response, url)
    return response


def _follow(
    client: httpx.Client, url: str, *, allow_private: bool, resolve: Resolver
) -> tuple[httpx.Response, httpx.URL]:
    """The streamed answer at the end of ``url``'s redirects, and the URL that gave it."""
    current = httpx.URL(url)
    for _hop in range(MAX_REDIRECTS + 1):
        address = _checked_address(
            current, origin=url, allow_private=allow_private, resolve=resolve
        )
        response = client.send(_request_to(client, current, address), stream=True)
        location = response.headers.get("location")
        if response.status_code not in _REDIRECTS or not location:
            return response, current
        response.close()
        try:
            current = current.join(location)
        except httpx.InvalidURL as exc:
            raise FormatError(f"a redirect names an invalid URL {location!r}", path=url) from exc
    raise StorageError(
        url, f"more than {MAX_REDIRECTS} redirects; the server seems to redirect in a loop"
    )


def _checked_address(
    url: httpx.URL, *, origin: str, allow_private: bool, resolve: Resolver
) -> IPAddress:
    """Resolve ``url``'s host once and check every address; the first is the one to connect to."""
    if url.scheme not in SCHEMES:
        raise UnsafeInput(
            f"only http and https URLs are fetched, not {url.scheme or 'a scheme-less'!r} "
            f"(reached {str(url)!r})",
            path=origin,
        )
    host = url.raw_host.decode("ascii")
    if not host:
        raise FormatError("the URL names no host", path=origin)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = _resolve(
            host, url.port or (443 if url.scheme == "https" else 80), origin, resolve
        )
    for address in addresses:
        reason = refusal(address, allow_private=allow_private)
        if reason is not None:
            hint = f" unless {_ALLOW_HINT}" if reason in {"loopback", "private"} else ""
            raise UnsafeInput(
                f"the host {host!r} resolves to the {reason} address {address}; Headwater does "
                f"not fetch from its own network{hint}",
                path=origin,
            )
    return addresses[0]


def _resolve(host: str, port: int, origin: str, resolve: Resolver) -> list[IPAddress]:
    try:
        found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host, port)]
    except (OSError, UnicodeError) as exc:
        raise LocationNotFound(
            origin, f"the host {host!r}", hint=f"It cannot be resolved ({exc})."
        ) from exc
    if not found:
        raise LocationNotFound(origin, f"the host {host!r}", hint="It resolves to no address.")
    return found


def _request_to(client: httpx.Client, url: httpx.URL, address: IPAddress) -> httpx.Request:
    """A GET sent to ``address`` that still names the host (Host header, TLS server name)."""
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    return client.build_request(
        "GET",
        url.copy_with(host=str(address)),
        headers={"Host": url.netloc.decode("ascii")},
        extensions=extensions,
    )


def _refuse_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 400:
        return
    response.close()
    answered = f"the server answered HTTP {status}"
    if status in {404, 410}:
        raise LocationNotFound(url, "the remote file", hint=f"The server answered HTTP {status}.")
    if status in {401, 403}:
        raise AccessDenied(url, "download it", hint=f"{answered}; the URL needs credentials")
    raise StorageError(url, f"{answered}; try again later or check the URL")
