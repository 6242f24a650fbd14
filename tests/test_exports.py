"""The public API is stated explicitly: every name in __all__ exists, none twice."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import vbgraph

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(vbgraph.__path__, "vbgraph.")
    if not m.name.rsplit(".", 1)[-1].startswith("_") and not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_every_public_module_declares_all_and_its_names_exist(name: str) -> None:
    """__all__ is declared and each listed name resolves."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(exported) == len(set(exported)), f"{name} lists a name twice"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item!r}"


def test_the_three_tiers_do_not_overlap() -> None:
    """vbgraph, vbgraph.lowlevel and vbgraph.testing export disjoint names."""
    import vbgraph.lowlevel as low
    import vbgraph.testing as testing

    top, mid, test = set(vbgraph.__all__), set(low.__all__), set(testing.__all__)
    assert not top & mid - {"AudioCaps"}
    assert not top & test
    assert not mid & test - {"VirtualClock"}


def test_lazy_names_resolve_to_the_real_objects() -> None:
    """vbgraph.Graph and friends come from their modules."""
    from vbgraph.graph.builder import Graph
    from vbgraph.runtime.session import Session

    assert vbgraph.Graph is Graph and vbgraph.Session is Session
    with pytest.raises(AttributeError):
        _ = vbgraph.NoSuchThing  # type: ignore[attr-defined]
