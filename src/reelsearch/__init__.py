"""reelsearch: a self-hostable movie search service, fast and forgiving of typos."""

__version__ = "0.1.0"

__all__ = ["__version__"]
