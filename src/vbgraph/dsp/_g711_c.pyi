"""Typed stub of the compiled G.711 kernels (_g711_c.pyx). Private: use vbgraph.dsp.g711."""

from vbgraph.typing import BytesLike

__all__ = [
    "ISA_AUTO",
    "ISA_AVX2",
    "ISA_SCALAR",
    "alaw_decode",
    "alaw_encode",
    "isa",
    "ulaw_decode",
    "ulaw_encode",
]

ISA_AUTO: int
ISA_SCALAR: int
ISA_AVX2: int

def ulaw_encode(data: BytesLike, isa: int = ..., /) -> bytes: ...
def ulaw_decode(data: BytesLike, isa: int = ..., /) -> bytes: ...
def alaw_encode(data: BytesLike, isa: int = ..., /) -> bytes: ...
def alaw_decode(data: BytesLike, isa: int = ..., /) -> bytes: ...
def isa() -> str: ...
