"""Build the compiled DSP kernels. Project metadata lives in pyproject.toml.

Each ``src/vbgraph/dsp/_X_c.pyx`` becomes the extension ``vbgraph.dsp._X_c``,
linked with the scalar kernel ``csrc/X.c`` and its SIMD variants
``csrc/X_<isa>.c`` (STYLE.md rule 6). Only known ISA suffixes count as variants,
so a future kernel named ``X_something`` is not pulled into ``X``'s extension.
"""

from __future__ import annotations

import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

DSP_DIR = Path("src/vbgraph/dsp")
CSRC_DIR = Path("csrc")
ISA_SUFFIXES = ("sse2", "sse41", "avx", "avx2", "avx512", "neon", "sve")

if sys.platform == "win32":
    COMPILE_ARGS = ["/O2", "/fp:precise"]
else:
    COMPILE_ARGS = [
        "-O3",
        "-std=c99",
        # Let branch-free selects on floats vectorise, and sqrt inline.
        "-fno-trapping-math",
        "-fno-math-errno",
        # Bit-exact with the numpy reference: never fuse a*b+c into one FMA.
        "-ffp-contract=off",
        # No -march=native and no -ffast-math: wheels must run on any CPU of
        # the target architecture, and the rounding in csrc/pcm.c needs strict
        # IEEE arithmetic.
    ]


def kernel_extensions() -> list[Extension]:
    """One Extension per ``_X_c.pyx`` in the dsp package."""
    extensions = []
    for pyx in sorted(DSP_DIR.glob("_*_c.pyx")):
        kernel = pyx.stem[1:-2]  # "_pcm_c" -> "pcm"
        variants = [CSRC_DIR / f"{kernel}_{isa}.c" for isa in ISA_SUFFIXES]
        sources = [pyx, CSRC_DIR / f"{kernel}.c", *(v for v in variants if v.exists())]
        extensions.append(
            Extension(
                f"vbgraph.dsp.{pyx.stem}",
                [s.as_posix() for s in sources],
                include_dirs=[CSRC_DIR.as_posix()],
                # Rebuild when a header changes; also puts the headers in the sdist.
                depends=[h.as_posix() for h in sorted(CSRC_DIR.glob(f"{kernel}*.h"))],
                extra_compile_args=COMPILE_ARGS,
            )
        )
    return extensions


setup(
    ext_modules=cythonize(
        kernel_extensions(),
        include_path=["src"],  # where `cimport` finds the .pxd files
        # Generated C goes under build/, not beside the .pyx: otherwise the 450 kB
        # file lands in the wheel as package data, and in the source tree.
        build_dir="build/cython",
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "embedsignature": True,
        },
    ),
)
