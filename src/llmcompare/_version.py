"""The installed version of llmcompare."""

__version__ = "0.1.0"
