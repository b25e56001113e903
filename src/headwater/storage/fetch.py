"""Fetch a file from an http(s) URL into the lake's staging folder, streamed and size-limited."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from headwater.errors import FormatError
from headwater.storage.readers.base import check_file_name

__all__ = ["download", "is_url"]


def is_url(text: str) -> bool:
    return urlparse(text).scheme in {"http", "https"}


def download(url: str, staging: Path, *, max_bytes: int, timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``staging/<random>/<name>``, keeping the name so its format is known."""
    name = unquote(Path(urlparse(url).path).name)
    if not name:
        raise FormatError("the URL names no file; end it with the file name", path=url)
    check_file_name(name, path=url)
    folder = staging / f"download-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    target = folder / name
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout_s) as response:
            if response.status_code >= 400:
                raise FormatError(f"the server answered HTTP {response.status_code}", path=url)
            size = 0
            with target.open("wb") as sink:
                for chunk in response.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FormatError(
                            f"the download passed the {max_bytes:,}-byte limit "
                            "(HEADWATER_MAX_UPLOAD_BYTES)",
                            path=url,
                        )
                    sink.write(chunk)
    except httpx.HTTPError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise FormatError(f"could not download ({exc})", path=url) from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return target
