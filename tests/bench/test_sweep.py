"""--sweep parsing and the grid of points (vbgraph.bench.sweep)."""

from __future__ import annotations

import pytest

from vbgraph.bench.sweep import Sweep, SweepPoint, parse_sweep, sweep_points
from vbgraph.errors import ConfigError


class TestParse:
    def test_values_are_split_on_commas(self) -> None:
        """turn.stop_ms=300,600 is two values of one target."""
        assert parse_sweep("turn.stop_ms=300, 600") == Sweep("turn.stop_ms", ("300", "600"))

    def test_nested_fields_are_dotted(self) -> None:
        """llm.ttft.p95_ms names a field inside a param."""
        assert parse_sweep("llm.ttft.p95_ms=400,800").target == "llm.ttft.p95_ms"

    def test_commas_inside_brackets_braces_and_quotes_do_not_split(self) -> None:
        """YAML lists, mappings and quoted strings stay whole."""
        sweep = parse_sweep('llm.replies=["a, b"],[c],{x: 1, y: 2},"d, e"')
        assert sweep.values == ('["a, b"]', "[c]", "{x: 1, y: 2}", '"d, e"')

    @pytest.mark.parametrize(
        "text", ["turn.stop_ms", "stop_ms=1,2", "turn.=1", "turn.stop_ms=", "turn.stop_ms=1,,2"]
    )
    def test_malformed_sweeps_are_config_errors_naming_the_option(self, text: str) -> None:
        """Bad syntax names --sweep and what was written."""
        with pytest.raises(ConfigError, match="--sweep"):
            parse_sweep(text)

    def test_a_value_listed_twice_is_refused(self) -> None:
        """Two identical points would only cost time."""
        with pytest.raises(ConfigError, match="twice"):
            parse_sweep("turn.stop_ms=300,300")


class TestPoints:
    def test_no_sweep_is_one_baseline_point(self) -> None:
        """Without --sweep there is one point and no override."""
        assert sweep_points([]) == [SweepPoint()]
        assert SweepPoint().label == "baseline" and SweepPoint().overrides == []

    def test_the_grid_is_the_cartesian_product_last_varying_fastest(self) -> None:
        """Two sweeps of 2 and 3 values make 6 points in nested-loop order."""
        points = sweep_points([parse_sweep("a.x=1,2"), parse_sweep("b.y=p,q,r")])
        assert [p.overrides for p in points] == [
            ["a.x=1", "b.y=p"],
            ["a.x=1", "b.y=q"],
            ["a.x=1", "b.y=r"],
            ["a.x=2", "b.y=p"],
            ["a.x=2", "b.y=q"],
            ["a.x=2", "b.y=r"],
        ]
        assert points[4].label == "a.x=2 b.y=q"

    def test_sweeping_one_parameter_twice_is_refused(self) -> None:
        """The same target in two --sweep options is a mistake."""
        with pytest.raises(ConfigError, match="swept twice"):
            sweep_points([parse_sweep("a.x=1"), parse_sweep("a.x=2")])
