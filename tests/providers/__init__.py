"""Provider tests (a package: several providers have a ``test_node.py``)."""
