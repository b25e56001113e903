"""The trainable models' parameters as the faces see them; the rules live in learning.

Faces import only flows, so this module hands them the parameter models of
:mod:`headwater.learning.params` (which loads neither torch nor scikit-learn: keep it so,
the CLI builds its options from them at start-up) and the one check every face runs
before it queues a run: :func:`checked_params`.
"""

from __future__ import annotations

from collections.abc import Mapping

from headwater.learning.params import (
    COMMON_FIELDS,
    COMMON_PARAMS,
    MAX_SEED,
    PARAMS,
    SEQUENCE_PARAMS,
    ParamRange,
    Params,
    ParamValue,
    Seed,
    allowed,
    model_params,
    param_kind,
    search_space,
    trainable,
    validate_params,
)

__all__ = [
    "COMMON_FIELDS",
    "COMMON_PARAMS",
    "MAX_SEED",
    "PARAMS",
    "SEQUENCE_PARAMS",
    "ParamRange",
    "Params",
    "Seed",
    "allowed",
    "changed_params",
    "checked_params",
    "model_params",
    "param_kind",
    "search_space",
    "trainable",
]


def checked_params(model: str, values: Mapping[str, object]) -> dict[str, ParamValue]:
    """The model's own parameters from ``values`` (text from a form is read as numbers).

    Only the parameters given are returned, typed; the rest keep the model's defaults.
    A bad one raises ConfigError naming it and its range, before anything is registered.
    """
    checked = validate_params(model, values)
    given = checked.model_dump(include=set(values) - COMMON_PARAMS)
    return {name: value for name, value in given.items()}


def changed_params(model: str, params: Mapping[str, object]) -> dict[str, object]:
    """The parameters of a recorded run that differ from its model's defaults, in order.

    A model the registry knows but this list does not (a detector) shows all of them.
    """
    kind = PARAMS.get(model)
    if kind is None:
        return dict(params)
    fields = trainable(model)
    return {k: v for k, v in params.items() if k in fields and v != fields[k].default}
