"""Collect ``bench_*.py`` when pytest is pointed at ``benchmarks/``.

pyproject's ``python_files`` keeps the default ``test_*.py`` pattern (and
``testpaths`` is ``tests``), so benchmarks only run when named explicitly.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)  # named on the command line: collected
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
