"""WebRTC tests stay on the loopback interface: ICE host candidates are 127.0.0.1 only.

aioice (aiortc's ICE) leaves 127.0.0.1 out of its host candidates, so a machine with
no other interface (a sandboxed CI runner) could not connect at all, and one with a
LAN address would route the tests' media through it. Here both Python peers gather
127.0.0.1 alone; Chromium is started with ``--allow-loopback-in-peer-connection``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every aioice connection made in the test gathers 127.0.0.1 only."""
    try:
        import aioice.ice as ice
    except ImportError:  # the protocol tests run without aiortc; the others skip
        return

    def loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(ice, "get_host_addresses", loopback)
