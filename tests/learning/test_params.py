"""The parameter models: one per estimator, matching its constructor, with usable ranges."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from headwater.errors import ConfigError
from headwater.learning import ESTIMATORS
from headwater.learning.params import (
    PARAMS,
    allowed,
    search_space,
    trainable,
    validate_params,
)

RUNTIME_ONLY = {"n_threads", "n_jobs"}
"""Constructor arguments that say how many cores to use, not what to learn."""


def test_every_estimator_has_a_parameter_model_under_its_name() -> None:
    assert list(PARAMS) == list(ESTIMATORS)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_the_parameter_model_matches_the_constructor(name: str) -> None:
    signature = inspect.signature(ESTIMATORS[name].__init__).parameters
    constructor = {k: p.default for k, p in signature.items() if k != "self"}
    fields = PARAMS[name].model_fields
    assert set(fields) == set(constructor) - RUNTIME_ONLY
    for field_name, field in fields.items():
        assert field.default == constructor[field_name], f"{name}.{field_name} default differs"
        assert field.description, f"{name}.{field_name} has no help text"


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_search_ranges_lie_inside_what_is_allowed(name: str) -> None:
    space = search_space(name)
    assert set(space) == set(trainable(name)) - {"patience"}
    for param, span in space.items():
        if span.kind == "choice":
            assert span.default in span.choices
            continue
        assert span.low is not None and span.high is not None and span.low < span.high
        validate_params(name, {param: span.low}, strict=True)  # both ends are legal values
        validate_params(name, {param: span.high}, strict=True)
        assert not span.log or span.low > 0, f"{name}.{param}: a log range must stay above 0"


def test_faces_send_text_and_it_is_read_as_numbers() -> None:
    checked = validate_params("mlp", {"density": "50", "dropout": "0.2", "patience": None})
    assert checked.model_dump()["density"] == 50 and checked.model_dump()["dropout"] == 0.2


def test_errors_name_every_bad_parameter_and_its_range() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_params("random_forest", {"n_estimators": 0, "density": 3})
    message = str(caught.value)
    assert "random_forest.n_estimators must be an integer in [1, 1000], got 0" in message
    assert "random_forest has no parameter density" in message
    assert allowed(PARAMS["mlp"].model_fields["schedule"]) == "one of cosine, constant"
    with pytest.raises(ConfigError, match="unknown model 'logistic_regression'; known models"):
        validate_params("logistic_regression", {})


def test_reading_the_parameters_loads_neither_torch_nor_sklearn() -> None:
    """The CLI builds its train options from them at start-up, which must stay quick."""
    code = (
        "import sys, headwater.flows.params, headwater.faces.cli.app; "
        "print(sorted({'torch', 'sklearn'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
