"""The fetcher's SSRF guard: every hop resolved once, checked, and connected to as checked.

The resolver and the transport are stubbed (`httpx.MockTransport` records every request
that would have left the machine), so nothing is sent beyond loopback; the last tests use a
real http.server on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from headwater.errors import (
    AccessDenied,
    LocationNotFound,
    StorageError,
    UnsafeInput,
    UploadTooLarge,
)
from headwater.storage.fetch import MAX_REDIRECTS, download, refusal

PUBLIC = "93.184.216.34"
NAMES = {"files.example": [PUBLIC], "cdn.example": ["2606:2800:220:1::1"]}

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A transport that answers from ``handler`` and keeps every request it was given."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._answer)
        self._handler = handler

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._handler(request)

    @property
    def hosts(self) -> list[str]:
        return [r.url.host for r in self.requests]


class Resolver:
    """A stub DNS: a table of names, and a log of every lookup."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = dict(NAMES if table is None else table)
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        return self.table[host]


def redirect_to(location: str) -> Handler:
    return lambda request: httpx.Response(302, headers={"Location": location})


def fetch(
    url: str, staging: Path, recorder: Recorder, resolver: Resolver | None = None, **options: int
) -> Path:
    return download(
        url,
        staging,
        max_bytes=options.get("max_bytes", 1000),
        resolve=resolver or Resolver(),
        transport=recorder.transport,
    )


def test_a_plain_download_connects_to_the_checked_address(tmp_path: Path) -> None:
    recorder = Recorder(lambda request: httpx.Response(200, content=b"a,b\n1,2\n"))
    resolver = Resolver()
    path = fetch("https://files.example/data/orders.csv", tmp_path, recorder, resolver)
    assert path.name == "orders.csv" and path.read_bytes() == b"a,b\n1,2\n"
    (sent,) = recorder.requests
    assert sent.url.host == PUBLIC and sent.url.scheme == "https"
    assert sent.headers["host"] == "files.example"
    assert sent.extensions["sni_hostname"] == "files.example"  # certificate checked for the name
    assert resolver.lookups == ["files.example"]


def test_a_rebinding_name_is_resolved_once_per_hop(tmp_path: Path) -> None:
    """A name that answers public first and private after: the connection uses the first."""

    class Rebinding(Resolver):
        def __call__(self, host: str, port: int) -> Sequence[str]:
            self.lookups.append(host)
            return [PUBLIC] if len(self.lookups) == 1 else ["10.0.0.7"]

    recorder = Recorder(lambda request: httpx.Response(200, content=b"x"))
    resolver = Rebinding()
    fetch("http://rebind.example:8080/x.csv", tmp_path, recorder, resolver)
    assert resolver.lookups == ["rebind.example"]
    assert [str(r.url) for r in recorder.requests] == [f"http://{PUBLIC}:8080/x.csv"]
    assert recorder.requests[0].headers["host"] == "rebind.example:8080"


def test_ipv6_addresses_are_connected_to_in_brackets(tmp_path: Path) -> None:
    recorder = Recorder(lambda request: httpx.Response(200, content=b"x"))
    fetch("http://cdn.example/x.csv", tmp_path, recorder)
    assert str(recorder.requests[0].url) == "http://[2606:2800:220:1::1]/x.csv"


@pytest.mark.parametrize(
    ("location", "says"),
    [
        ("http://10.0.0.5/internal.csv", "private address 10.0.0.5"),
        ("http://169.254.169.254/latest/meta-data/x.csv", "link-local address 169.254.169.254"),
        ("http://[::ffff:127.0.0.1]/x.csv", "loopback address"),
        ("http://[fd00::1]/x.csv", "private address fd00::1"),
        ("http://internal.example/x.csv", "private address 192.168.1.20"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://files.example/x", "only http and https"),
    ],
)
def test_a_redirect_out_of_bounds_is_refused_before_connecting(
    tmp_path: Path, location: str, says: str
) -> None:
    recorder = Recorder(redirect_to(location))
    resolver = Resolver({**NAMES, "internal.example": ["192.168.1.20"]})
    with pytest.raises(UnsafeInput, match=says) as refused:
        fetch("https://files.example/orders.csv", tmp_path, recorder, resolver)
    assert refused.value.path == "https://files.example/orders.csv"
    assert recorder.hosts == [PUBLIC]  # the first hop only; the redirect target never
    assert list(tmp_path.iterdir()) == []


def test_a_relative_redirect_is_followed_and_checked(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old.csv":
            return httpx.Response(301, headers={"Location": "/new/data.csv"})
        return httpx.Response(200, content=b"moved")

    recorder = Recorder(handler)
    path = fetch("https://files.example/old.csv", tmp_path, recorder)
    assert path.read_bytes() == b"moved" and path.name == "old.csv"
    assert [r.url.path for r in recorder.requests] == ["/old.csv", "/new/data.csv"]
    assert {r.headers["host"] for r in recorder.requests} == {"files.example"}


def test_a_redirect_loop_stops_after_five(tmp_path: Path) -> None:
    recorder = Recorder(redirect_to("https://files.example/again.csv"))
    with pytest.raises(StorageError, match=f"more than {MAX_REDIRECTS} redirects"):
        fetch("https://files.example/orders.csv", tmp_path, recorder)
    assert len(recorder.requests) == MAX_REDIRECTS + 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1", "::1", "169.254.169.254", "0.0.0.0"])
def test_a_name_that_resolves_to_a_private_address_is_never_connected_to(
    tmp_path: Path, address: str
) -> None:
    recorder = Recorder(lambda request: httpx.Response(200, content=b"secret"))
    resolver = Resolver({"sneaky.example": [PUBLIC, address]})  # one bad address is enough
    with pytest.raises(UnsafeInput, match="does not fetch from its own network"):
        fetch("http://sneaky.example/x.csv", tmp_path, recorder, resolver)
    assert recorder.requests == []


def test_an_address_literal_is_checked_without_a_lookup(tmp_path: Path) -> None:
    recorder = Recorder(lambda request: httpx.Response(200))
    resolver = Resolver()
    with pytest.raises(UnsafeInput, match="link-local"):
        fetch("http://169.254.169.254/latest/x.csv", tmp_path, recorder, resolver)
    with pytest.raises(UnsafeInput, match="only http and https"):
        fetch("ftp://files.example/x.csv", tmp_path, recorder, resolver)
    assert recorder.requests == [] and resolver.lookups == []


def test_an_unknown_host_is_not_found(tmp_path: Path) -> None:
    def no_such_host(host: str, port: int) -> Sequence[str]:
        raise OSError(-2, "Name or service not known")

    recorder = Recorder(lambda request: httpx.Response(200))
    with pytest.raises(LocationNotFound, match=r"nowhere\.example"):
        download("http://nowhere.example/x.csv", tmp_path, max_bytes=10, resolve=no_such_host)
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("status", "error", "says"),
    [
        (404, LocationNotFound, "HTTP 404"),
        (410, LocationNotFound, "HTTP 410"),
        (403, AccessDenied, "HTTP 403"),
        (500, StorageError, "HTTP 500"),
        (503, StorageError, "HTTP 503"),
    ],
)
def test_a_remote_error_is_on_the_error_tree(
    tmp_path: Path, status: int, error: type[Exception], says: str
) -> None:
    recorder = Recorder(lambda request: httpx.Response(status, content=b"no"))
    with pytest.raises(error, match=says):
        fetch("https://files.example/orders.csv", tmp_path, recorder)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_download_past_the_limit_is_too_large_and_removed(tmp_path: Path, declared: bool) -> None:
    body = b"x" * 5000

    def handler(request: httpx.Request) -> httpx.Response:
        if declared:
            return httpx.Response(200, content=body)
        return httpx.Response(200, content=iter([body[:2500], body[2500:]]))

    with pytest.raises(UploadTooLarge, match="1,000-byte limit"):
        fetch("https://files.example/big.csv", tmp_path, Recorder(handler), max_bytes=1000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("address", "refused", "refused_even_if_allowed"),
    [
        ("8.8.8.8", None, None),
        ("2606:4700:4700::1111", None, None),
        ("::ffff:8.8.8.8", None, None),
        ("127.0.0.1", "loopback", None),
        ("::1", "loopback", None),
        ("::ffff:127.0.0.1", "loopback", None),
        ("10.0.0.1", "private", None),
        ("172.16.5.4", "private", None),
        ("192.168.0.1", "private", None),
        ("fc00::1", "private", None),
        ("::ffff:10.0.0.1", "private", None),
        ("2002:a00:1::1", "private", None),  # 6to4 around 10.0.0.1
        ("64:ff9b::a00:1", "private", None),  # NAT64 around 10.0.0.1
        ("100.64.0.1", "private", "private"),  # carrier-grade NAT: not ours to allow
        ("169.254.169.254", "link-local", "link-local"),
        ("fe80::1", "link-local", "link-local"),
        ("::ffff:169.254.169.254", "link-local", "link-local"),
        ("224.0.0.1", "multicast", "multicast"),
        ("ff02::1", "multicast", "multicast"),
        ("0.0.0.0", "unspecified", "unspecified"),
        ("::", "unspecified", "unspecified"),
        ("240.0.0.1", "reserved", "reserved"),
    ],
)
def test_which_addresses_are_refused(
    address: str, refused: str | None, refused_even_if_allowed: str | None
) -> None:
    ip = ipaddress.ip_address(address)
    assert refusal(ip) == refused
    assert refusal(ip, allow_private=True) == refused_even_if_allowed


# -- a real server on 127.0.0.1 ------------------------------------------------------------------


class _Served(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str]]] = []
    redirect: str | None = None

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers["Host"]))
        if self.redirect:
            self.send_response(302)
            self.send_header("Location", self.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"a,b\n1,2\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[tuple[int, type[_Served]]]:
    handler = type("Handler", (_Served,), {"seen": [], "redirect": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_loopback_is_refused_unless_allowed(
    tmp_path: Path, local_server: tuple[int, type[_Served]]
) -> None:
    port, handler = local_server
    url = f"http://localhost:{port}/orders.csv"
    with pytest.raises(UnsafeInput, match="HEADWATER_FETCH_ALLOW_PRIVATE"):
        download(url, tmp_path, max_bytes=100)
    assert handler.seen == []
    path = download(url, tmp_path, max_bytes=100, allow_private=True)
    assert path.read_bytes() == b"a,b\n1,2\n"
    assert handler.seen == [("/orders.csv", f"localhost:{port}")]


def test_a_real_redirect_to_cloud_metadata_is_refused_even_when_private_is_allowed(
    tmp_path: Path, local_server: tuple[int, type[_Served]]
) -> None:
    port, handler = local_server
    handler.redirect = "http://169.254.169.254/latest/meta-data/iam.csv"
    with pytest.raises(UnsafeInput, match="link-local"):
        download(f"http://127.0.0.1:{port}/x.csv", tmp_path, max_bytes=100, allow_private=True)
    assert [path for path, _ in handler.seen] == ["/x.csv"]
    assert list(tmp_path.iterdir()) == []


# -- https: connected to the checked IP, the certificate still verified for the name ----------


def _certificate(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for ``name`` signed by it: (ca, cert, key)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def named(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(named("headwater test CA"))
        .issuer_name(named("headwater test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(named(name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_server(
    tmp_path: Path, local_server: tuple[int, type[_Served]]
) -> Iterator[tuple[int, type[_Served], Path, list[str | None]]]:
    """An https server on 127.0.0.1 whose certificate names files.test only."""
    import ssl

    folder = tmp_path / "tls"
    folder.mkdir()
    ca, cert, key = _certificate(folder, "files.test")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, context: server_names.append(name)
    handler = type("Handler", (_Served,), {"seen": [], "redirect": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler, ca, server_names
    finally:
        server.shutdown()
        server.server_close()


def test_https_to_the_checked_ip_verifies_the_certificate_for_the_name(
    tmp_path: Path, tls_server: tuple[int, type[_Served], Path, list[str | None]]
) -> None:
    import ssl

    port, handler, ca, server_names = tls_server
    trust = ssl.create_default_context(cafile=str(ca))
    resolver = Resolver({"files.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    staging = tmp_path / "staging"

    path = download(
        f"https://files.test:{port}/orders.csv",
        staging,
        max_bytes=100,
        allow_private=True,
        resolve=resolver,
        transport=httpx.HTTPTransport(verify=trust),
    )
    assert path.read_bytes() == b"a,b\n1,2\n"
    assert server_names == ["files.test"]  # SNI carries the name, not the IP
    assert handler.seen == [("/orders.csv", f"files.test:{port}")]

    # The same server under a name its certificate does not carry: refused in the handshake.
    with pytest.raises(StorageError, match="certificate verify failed"):
        download(
            f"https://other.test:{port}/orders.csv",
            staging,
            max_bytes=100,
            allow_private=True,
            resolve=resolver,
            transport=httpx.HTTPTransport(verify=trust),
        )
    assert len(handler.seen) == 1 and resolver.lookups == ["files.test", "other.test"]
