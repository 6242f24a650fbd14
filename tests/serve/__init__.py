"""Tests of vbgraph.serve."""
