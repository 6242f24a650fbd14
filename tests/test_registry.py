"""The node registry: names, duplicates, entry points."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import ClassVar

import pytest

from vbgraph.errors import ConfigError, UnknownNodeTypeError
from vbgraph.node import Node, Port, frame_port
from vbgraph.registry import ENTRY_POINT_GROUP, Registry, default_registry


class Plugin(Node):
    """A third-party node."""

    type_name = "acme.plugin"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}


class Impostor(Node):
    """Another class claiming the same name."""

    type_name = "acme.plugin"


def fake_entry_points(*eps: metadata.EntryPoint) -> object:
    def entry_points(group: str) -> list[metadata.EntryPoint]:
        return [e for e in eps if e.group == group]

    return entry_points


class TestRegistry:
    """Lookup by type name."""

    def test_built_ins_are_found_by_name(self) -> None:
        """The default registry knows the built-in nodes."""
        assert default_registry().get("gain").type_name == "gain"
        assert "file.source" in default_registry().names()

    def test_an_unknown_name_suggests_close_ones(self) -> None:
        """A typo gets a did-you-mean."""
        with pytest.raises(UnknownNodeTypeError, match="did you mean 'gain'"):
            default_registry().get("gian")

    def test_two_classes_cannot_share_a_name(self) -> None:
        """Registering a second class under a taken name is an error naming both."""
        reg = Registry(load_entry_points=False)
        reg.add(Plugin)
        with pytest.raises(ConfigError, match="registered twice"):
            reg.add(Impostor)


class TestEntryPoints:
    """Third-party nodes arrive through the vbgraph.nodes entry-point group."""

    def test_an_entry_point_node_is_loaded_on_first_lookup(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """acme.plugin resolves through its entry point."""
        ep = metadata.EntryPoint("acme.plugin", f"{__name__}:Plugin", ENTRY_POINT_GROUP)
        monkeypatch.setattr(metadata, "entry_points", fake_entry_points(ep))
        assert Registry().get("acme.plugin") is Plugin

    def test_a_broken_entry_point_is_reported_not_raised(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An entry point that fails to import names its error when looked up."""
        ep = metadata.EntryPoint("acme.broken", "no_such_module_xyz:Thing", ENTRY_POINT_GROUP)
        monkeypatch.setattr(metadata, "entry_points", fake_entry_points(ep))
        reg = Registry(parent=default_registry())
        assert "gain" in reg  # other types still work
        with pytest.raises(UnknownNodeTypeError, match="entry point failed to load"):
            reg.get("acme.broken")

    def test_an_entry_point_name_must_match_the_type_name(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A mismatched name is refused and reported."""
        ep = metadata.EntryPoint("acme.other", f"{__name__}:Plugin", ENTRY_POINT_GROUP)
        monkeypatch.setattr(metadata, "entry_points", fake_entry_points(ep))
        reg = Registry()
        reg.load_entry_points()
        assert "differs from type_name" in reg.entry_point_errors["acme.other"]
