"""The options of a paginated JSON source, declared once for every command that reads one.

`ingest`, `predict` and `sequences analyze|predict` had each declared their own, with
help texts that had drifted apart (as the API's bodies had: faces/api/page_fields.py).
"""

from __future__ import annotations

import typer

__all__ = ["MAX_PAGES", "PAGINATE", "RECORDS"]

RECORDS = typer.Option(
    None, "--records", help="Path of the list of records in each page, e.g. user_data."
)
PAGINATE = typer.Option(
    None,
    "--paginate",
    help="How pages follow: next[:PATH], link, cursor:FIELD[=PARAM] or page:PARAM "
    "(default: a next field or a Link header, found on the first page).",
)
MAX_PAGES = typer.Option(
    None,
    "--max-pages",
    min=1,
    max=100_000,
    help="Most pages to follow (default HEADWATER_FETCH_MAX_PAGES).",
)
