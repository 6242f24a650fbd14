"""Fake provider servers for tests: real peers on 127.0.0.1 that speak the documented protocols.

Each module is one provider's fake (import it by its module path); nothing is
re-exported here.
"""

__all__: list[str] = []
