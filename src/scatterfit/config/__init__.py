"""The config file: typed, validated sections (schema.py, the single source of every key) and the builders that
turn them into API objects (builders.py)."""

from scatterfit.config.schema import Config, load_config

__all__ = ["Config", "load_config"]
