"""The C kernels' own test harnesses, built with AddressSanitizer and UBSan."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tests.conftest import ROOT

CSRC = ROOT / "csrc"
HARNESSES = {"resample_partial.c": ["resample.c", "resample_avx2.c"]}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("harness", sorted(HARNESSES))
def test_the_c_harness_passes_under_sanitizers(harness: str, tmp_path: Path) -> None:
    """Split outputs and flushes equal one-shot output, with no memory or UB errors."""
    exe = tmp_path / "harness"
    sources = [CSRC / "tests" / harness, *(CSRC / s for s in HARNESSES[harness])]
    build = subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O1",
            "-g",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            f"-I{CSRC}",
            *map(str, sources),
            "-lm",
            "-o",
            str(exe),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0 and "sanitize" in build.stderr and "cannot find" in build.stderr:
        pytest.skip(f"sanitizer runtime not installed: {build.stderr.strip()[:200]}")
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
