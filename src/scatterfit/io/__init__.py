"""Readers for measured data files and writers for results."""

from scatterfit.io.datasets import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
