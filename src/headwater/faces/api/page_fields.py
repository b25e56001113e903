"""The options of a paginated JSON source, declared once for every API body that takes one.

`POST /batches` (a URL read as pages when any of them is given) and the sequence bodies
(`/sequences/analyze`, `/sequences/predictions`) had each declared their own, and their
descriptions had already drifted apart.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = ["MaxPages", "Paginate", "RecordsPath"]

RecordsPath = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="Path of the list of records in each page, e.g. user_data.",
        examples=["user_data"],
    ),
]
Paginate = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="How pages follow: next[:PATH], link, cursor:FIELD[=PARAM] or page:PARAM; "
        "default: a next field or a Link header, found on the first page.",
    ),
]
MaxPages = Annotated[
    int | None,
    Field(ge=1, le=100_000, description="Most pages to follow (server default)."),
]
