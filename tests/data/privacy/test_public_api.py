"""The package's public names: exactly `__all__`, each importable and documented."""

from __future__ import annotations

import inspect

import headwater.data.privacy as privacy


def test_every_exported_name_exists_and_is_documented() -> None:
    assert sorted(privacy.__all__) == sorted(set(privacy.__all__))
    for name in privacy.__all__:
        member = getattr(privacy, name)
        if inspect.isfunction(member) or inspect.isclass(member):
            assert inspect.getdoc(member), f"{name} has no docstring"


def test_public_names_are_the_documented_ones() -> None:
    public = {n for n in vars(privacy) if not n.startswith("_") and n != "annotations"}
    modules = {n for n in public if inspect.ismodule(getattr(privacy, n))}
    assert public - modules == set(privacy.__all__)
