"""``python -m benchmarks.vad [--quick]``: print the VAD benchmark as markdown."""

from __future__ import annotations

import sys

from .runner import main

sys.exit(main())
