"""Check STYLE rule 1 in your own provider's tests: protocol modules import no I/O library.

.. code-block:: python

    from vbgraph.testing.imports import assert_imports_without

    def test_the_protocol_is_sans_io() -> None:
        assert_imports_without(["mypkg.providers.acme.protocol"])

The modules are imported in a fresh interpreter in which the ``blocked``
top-level packages cannot be imported; any import of one fails the check with
the child's traceback.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Sequence

__all__ = ["IO_LIBRARIES", "assert_imports_without"]

IO_LIBRARIES: tuple[str, ...] = (
    "asyncio",
    "websockets",
    "aiohttp",
    "aiortc",
    "av",
    "ssl",
    "socket",
)
"""What a sans-I/O protocol module must not import."""

_CHILD = """
import sys
blocked = set({blocked!r})

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{{name}} is blocked: a protocol module must not import it")
        return None

sys.meta_path.insert(0, Blocker())
for module in {modules!r}:
    __import__(module)
leaked = sorted(name for name in blocked if name in sys.modules)
assert not leaked, f"imported anyway: {{leaked}}"
print("ok")
"""


def assert_imports_without(modules: Sequence[str], blocked: Iterable[str] = IO_LIBRARIES) -> None:
    """Raise ``AssertionError`` if importing ``modules`` needs any of ``blocked``."""
    code = _CHILD.format(blocked=sorted(set(blocked)), modules=list(modules))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0 or done.stdout.strip() != "ok":
        raise AssertionError(f"importing {', '.join(modules)} failed:\n{done.stderr}")
