"""Tests for loading graph files and text into builder graphs."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbgraph.errors import ConfigError, SourceLocation
from vbgraph.graph.builder import Graph
from vbgraph.graph.load import load, loads

DATA = Path(__file__).parent / "data"


class TestLoad:
    def test_load_gives_a_graph_that_remembers_its_file(self) -> None:
        """The graph holds the spec, the source file and where things were written."""
        graph = load(DATA / "good_chain.yaml", env={})
        assert isinstance(graph, Graph)
        assert graph.source == str(DATA / "good_chain.yaml")
        assert graph.locations is not None
        assert graph.locations.node("lo") == SourceLocation(str(DATA / "good_chain.yaml"), 11, 9)
        assert list(graph) == ["src", "hi", "lo", "mix", "sink"]

    def test_a_missing_file_is_a_config_error(self, tmp_path: Path) -> None:
        """Nothing to read: ConfigError naming the path."""
        with pytest.raises(ConfigError, match="cannot read graph file"):
            load(tmp_path / "none.yaml")

    def test_overrides_may_be_any_iterable(self) -> None:
        """A generator of --set strings is read once and still names itself in errors."""
        graph = load(DATA / "good_chain.yaml", env={}, overrides=(s for s in ["lo.db=1"]))
        assert graph.to_spec().nodes["lo"].params == {"db": 1}


class TestLoads:
    def test_loads_reads_text_named_as_given(self) -> None:
        """Errors in text graphs are placed in the name given."""
        with pytest.raises(ConfigError) as info:
            loads("nodes:\n  a: {}\n", name="inline.yaml")
        assert info.value.location == SourceLocation("inline.yaml", 2, 6)

    def test_loads_takes_overrides_and_env(self) -> None:
        """--set and ${VAR} work on text as on files."""
        graph = loads(
            "nodes:\n  a: {type: x, v: '${V}'}\n", env={"V": "from-env"}, overrides=["a.w=2"]
        )
        assert graph.to_spec().nodes["a"].params == {"v": "from-env", "w": 2}

    def test_loads_keeps_base_dir(self, tmp_path: Path) -> None:
        """base_dir is where relative paths of the graph point."""
        assert loads("nodes: {}\n", base_dir=tmp_path).base_dir == str(tmp_path)
        assert loads("nodes: {}\n").base_dir is None
