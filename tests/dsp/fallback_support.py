"""Re-importing a DSP kernel's public module as if its compiled module were missing."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import re
import sys
import types
from collections.abc import Sequence

import pytest

import vbgraph.dsp
from vbgraph.dsp._backend import FALLBACK_WARNING


class BlockCompiled(importlib.abc.MetaPathFinder):
    """Makes ``import vbgraph.dsp._<kernel>_c`` fail, as on a machine without the wheel."""

    def __init__(self, kernel: str) -> None:
        self.name = f"vbgraph.dsp._{kernel}_c"

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == self.name:
            raise ImportError("blocked by the test")
        return None


def reimport_without_compiled(monkeypatch: pytest.MonkeyPatch, kernel: str) -> types.ModuleType:
    """A fresh ``vbgraph.dsp.<kernel>`` loaded with its compiled module blocked.

    Asserts the fallback warns exactly once, at import, and that importing it
    again returns the same module with no further warning. Everything is
    restored after the test by ``monkeypatch``.
    """
    public_name = f"vbgraph.dsp.{kernel}"
    public = importlib.import_module(public_name)
    monkeypatch.setattr(sys, "meta_path", [BlockCompiled(kernel), *sys.meta_path])
    monkeypatch.delitem(sys.modules, f"vbgraph.dsp._{kernel}_c", raising=False)
    monkeypatch.delattr(vbgraph.dsp, f"_{kernel}_c", raising=False)
    monkeypatch.delitem(sys.modules, public_name)
    monkeypatch.setattr(vbgraph.dsp, kernel, public, raising=False)
    with pytest.warns(RuntimeWarning, match=re.escape(FALLBACK_WARNING)) as record:
        fresh = importlib.import_module(public_name)
    assert len(record) == 1
    assert fresh is not public
    assert importlib.import_module(public_name) is fresh
    return fresh
