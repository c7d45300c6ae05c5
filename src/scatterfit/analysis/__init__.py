"""Analyses of refined structures for reports (no plotting)."""
