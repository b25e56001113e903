"""Synthesizers: new rows with a table's statistics and none of its people.

One interface (:class:`Synthesizer`: settings in the constructor, ``fit(table)``,
``sample(n, seed)``, ``save(folder)``) over three methods: ``pca`` (principal
components and a Gaussian mixture), ``vae`` (a conditional VAE in PyTorch) and
``copula`` (per-column marginals joined by a Gaussian copula, the baseline).
:mod:`headwater.learning.synth.report` measures how faithful, useful and private
the rows are against a holdout the synthesizer never saw.
"""

from __future__ import annotations

from pathlib import Path

from headwater.errors import ConfigError, SchemaError
from headwater.learning.synth.base import Synthesizer, read_files
from headwater.learning.synth.copula import CopulaSynthesizer
from headwater.learning.synth.pca import PCASynthesizer
from headwater.learning.synth.vae import VAESynthesizer

__all__ = [
    "METHODS",
    "CopulaSynthesizer",
    "PCASynthesizer",
    "Synthesizer",
    "VAESynthesizer",
    "load_synthesizer",
    "make_synthesizer",
]

METHODS: dict[str, type[Synthesizer]] = {
    "pca": PCASynthesizer,
    "vae": VAESynthesizer,
    "copula": CopulaSynthesizer,
}


def make_synthesizer(method: str, **settings: object) -> Synthesizer:
    """The synthesizer ``method`` names, with ``settings``; an unknown one lists the known."""
    kind = METHODS.get(method)
    if kind is None:
        raise ConfigError(
            f"unknown synthesis method {method!r}; choose one of: {', '.join(METHODS)}"
        )
    try:
        return kind(**settings)
    except TypeError as error:
        raise ConfigError(f"synthesis method {method!r}: {error}") from error


def load_synthesizer(folder: Path) -> Synthesizer:
    """A fitted synthesizer back from the files ``Synthesizer.save`` wrote."""
    settings, tensors = read_files(folder)
    method = str(settings.get("method"))
    kind = METHODS.get(method)
    if kind is None:
        raise SchemaError(f"{folder} holds a synthesizer of unknown method {method!r}")
    return kind.restore(settings, tensors)
