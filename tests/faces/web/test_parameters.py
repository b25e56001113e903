"""Every face exposes every trainable parameter of every model, with its help and range.

The parameter models (`headwater.learning.params`) are the one source; the CLI's options,
the API's request schemas and the web train form are generated from them. This reads each
face as its user meets it: the click command behind `headwater train --help`, the OpenAPI
document, and the train page's HTML.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import typer

from headwater.faces.api import create_app
from headwater.faces.cli.app import app as cli_app
from headwater.flows.params import COMMON_FIELDS, PARAMS, SEQUENCE_PARAMS, allowed, trainable
from headwater.settings import Settings
from tests.builders import write_csv
from tests.faces.web.conftest import Site
from tests.faces.web.test_access import _logged_in

EVERY_PARAM = [(model, name) for model in PARAMS for name in trainable(model)]
IDS = [f"{model}.{name}" for model, name in EVERY_PARAM]


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


def test_the_registry_has_parameters_to_check() -> None:
    assert len(EVERY_PARAM) >= 25 and {"n_estimators", "c", "max_iter"} <= {
        name for _, name in EVERY_PARAM
    }


def test_the_cli_has_an_option_for_every_parameter() -> None:
    command = typer.main.get_command(cli_app)
    train = command.get_command(typer.Context(command), "train")  # type: ignore[attr-defined]
    options = {opt: param for param in train.params for opt in param.opts}
    for model in PARAMS:
        assert model in _words(options["--model"].help), f"--model does not list {model}"
    assert "logistic_regression" not in _words(options["--model"].help)
    assert allowed(COMMON_FIELDS["seed"]) in _words(options["--seed"].help).lower()
    for model, name in EVERY_PARAM:
        field = trainable(model)[name]
        option = options.get("--" + name.replace("_", "-"))
        assert option is not None, f"no CLI option for {model}.{name}"
        help_text = _words(option.help)
        assert model in help_text and _words(field.description) in help_text
        assert allowed(field) in help_text.lower(), f"{model}.{name}: range missing"


def test_the_api_schema_has_every_parameter_with_range_and_description(tmp_path: Path) -> None:
    document = create_app(Settings(home=tmp_path / "home")).openapi()
    body = document["paths"]["/runs"]["post"]["requestBody"]["content"]["application/json"]
    refs = {ref["$ref"].rsplit("/", 1)[1] for ref in body["schema"]["oneOf"]}
    schemas = document["components"]["schemas"]
    by_model = {
        schemas[ref]["properties"]["model"]["const"]: schemas[ref]["properties"] for ref in refs
    }
    assert set(by_model) == set(PARAMS) | set(SEQUENCE_PARAMS)  # lstm: on sequence datasets
    every = [*EVERY_PARAM, *((m, n) for m in SEQUENCE_PARAMS for n in trainable(m))]
    for model, name in every:
        field = trainable(model)[name]
        shown = by_model[model].get(name)
        assert shown is not None, f"POST /runs has no {name} for {model}"
        assert shown["description"] == field.description
        declared = {**PARAMS, **SEQUENCE_PARAMS}[model].model_json_schema()["properties"][name]
        for key, value in declared.items():  # ranges, type, default, help; OpenAPI omits null
            if not (key == "default" and value is None):
                assert shown.get(key) == value, f"{model}.{name}: the API's {key} differs"


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_the_train_form_has_a_field_for_every_parameter(site: Site, tmp_path: Path) -> None:
    client = _logged_in(site)
    data = write_csv(tmp_path / "orders.csv", 30).read_bytes()
    files = {"file": ("orders.csv", data, "text/csv")}
    client.post("/ui/datasets/upload", data={"dataset": "orders", "label": "label"}, files=files)
    page = client.get("/ui/train").text
    text = _words(html.unescape(re.sub(r"<[^>]+>", " ", page)))
    for model, name in EVERY_PARAM:
        field = trainable(model)[name]
        control = re.search(
            rf'<(input|select) id="{model}-{name}" name="{model}-{name}"[^>]*>', page
        )
        assert control is not None, f"the train form has no field for {model}.{name}"
        assert f'<label for="{model}-{name}">' in page
        help_match = re.search(rf'<p class="hint" id="{model}-{name}-help">([^<]*)</p>', page)
        assert help_match is not None
        help_text = _words(html.unescape(help_match.group(1)))
        assert _words(field.description) in help_text and allowed(field) in help_text.lower()
    for model in PARAMS:
        assert f'<fieldset data-models="{model}"' in page
    assert "Seed" in text
