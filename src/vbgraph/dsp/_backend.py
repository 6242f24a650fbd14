"""Choosing a kernel's implementation: the compiled module, or its reference.

Every kernel ``X`` has a compiled module ``_X_c`` (Cython over ``csrc/X.c``) and
a reference ``_X_ref`` (numpy or pure Python) with the same functions. The
public module (``pcm``, ``g711`` ...) calls :func:`load_backend` once at import:
it returns the compiled module, or the reference with a ``RuntimeWarning`` when
the compiled one is missing (a source checkout that was never built, an
unsupported platform). The kernels read samples in host order, so a big-endian
machine always gets the reference, which reads little-endian explicitly.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any, Final

__all__ = ["FALLBACK_WARNING", "load_backend"]

FALLBACK_WARNING: Final = "vbgraph: compiled DSP module missing, using the numpy fallback (slower)"


def load_backend(kernel: str, reference: str = "numpy") -> tuple[Any, str]:
    """``(module, "c")`` for ``vbgraph.dsp._{kernel}_c``, else ``(reference module, reference)``.

    ``reference`` names the fallback in ``IMPLEMENTATION`` ("numpy" or "python").
    Callers declare the returned module with the typing protocol both satisfy.
    """
    package = __name__.rsplit(".", 1)[0]
    if sys.byteorder == "little":
        try:
            compiled = importlib.import_module(f"{package}._{kernel}_c")
        except ImportError:
            # Module code runs once per process, so each kernel warns once.
            warnings.warn(FALLBACK_WARNING, RuntimeWarning, stacklevel=3)
        else:
            return compiled, "c"
    return importlib.import_module(f"{package}._{kernel}_ref"), reference
