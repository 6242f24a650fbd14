"""Docs generated from code stay in sync with it."""

from __future__ import annotations

import pytest
from tests.conftest import ROOT

from vbgraph.cli.main import main


def test_the_node_reference_matches_the_params_models(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/nodes.md is exactly what `vbgraph nodes --markdown` prints (regenerate it if not)."""
    assert main(["nodes", "--markdown"]) == 0
    generated = capsys.readouterr().out
    assert (ROOT / "docs" / "nodes.md").read_text() == generated, (
        "docs/nodes.md is stale: run `vbgraph nodes --markdown > docs/nodes.md`"
    )


def test_the_lifecycle_diagram_names_every_transition() -> None:
    """docs/runtime.md lists every row of the session transition table."""
    from vbgraph.runtime.lifecycle import TRANSITIONS

    text = (ROOT / "docs" / "runtime.md").read_text()
    for (state, event), new in TRANSITIONS.items():
        assert f"| {state.value} | {event.value} | {new.value} |" in text
