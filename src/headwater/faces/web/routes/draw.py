"""Draw a digit: a canvas whose snapshot the server makes MNIST-like and a model classifies.

The browser sends the canvas as a PNG; `exploration.digit_from_drawing` does the
MNIST preprocessing on the server (one implementation, tested in Python), and the
answer carries the 28x28 image the model saw so the page can show it.
"""

from __future__ import annotations

import base64
import binascii
import json

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from headwater.errors import FormatError, SchemaError
from headwater.faces.web.context import Page, PageDep, WebError, WebRoute, json_message
from headwater.faces.web.routes.predict import default_choice, model_choices
from headwater.flows import exploration
from headwater.flows.inputs import image_shape

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)

DATA_URL_PREFIX = "data:image/png;base64,"
MNIST_SIDE, MNIST_BOX = 28, 20


@router.get("/draw")
def draw_page(page: PageDep, model: str | None = None) -> Response:
    """The canvas and a choice of image models (the served one first)."""
    choices = model_choices(page, kinds=frozenset({"image"}))
    return page.render(
        "draw.html",
        title="Draw a digit",
        section="draw",
        choices=choices,
        chosen=default_choice(choices, model),
    )


def _classify(page: Page, run_id: str, png: bytes) -> dict[str, object]:
    served = page.service.models.load(run_id, None)
    shape = image_shape(served)
    if shape is None or len(shape) != 2 or shape[0] != shape[1]:
        raise WebError(
            f"run {run_id} was not trained on square grey images; choose a model trained on "
            "digits such as MNIST"
        )
    side = shape[0]
    box = max(1, round(side * MNIST_BOX / MNIST_SIDE))
    digit = exploration.digit_from_drawing(exploration.read_drawing(png), side=side, box=box)
    proba = served.predict_proba(digit.reshape(1, side, side))[0]
    classes = served.classes
    best = int(np.argmax(proba))
    return {
        "run_id": served.run_id,
        "label": classes[best],
        "probability": float(proba[best]),
        "probabilities": [
            {"label": label, "p": float(p)} for label, p in zip(classes, proba, strict=True)
        ],
        "side": side,
        "pixels": digit.reshape(-1).tolist(),
    }


@router.post("/draw/classify")
async def classify(request: Request, page: PageDep) -> Response:
    """JSON ``{"model": run_id, "image": "data:image/png;base64,..."}`` in; the digit out."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError("the request is not JSON", field="body") from exc
    if not isinstance(body, dict):
        raise FormatError("the request must be a JSON object", field="body")
    run_id, image = body.get("model"), body.get("image")
    if not isinstance(run_id, str) or not run_id:
        raise WebError("Choose a model first; train one on MNIST if the list is empty.")
    if not isinstance(image, str) or not image.startswith(DATA_URL_PREFIX):
        raise SchemaError("send the canvas as a PNG data URL", field="image")
    try:
        png = base64.b64decode(image[len(DATA_URL_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError("the image is not valid base64", field="image") from exc
    answer = await anyio.to_thread.run_sync(_classify, page, run_id, png)
    return json_message(answer)
