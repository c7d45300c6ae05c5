"""Plots and reports (the only place that imports matplotlib)."""
