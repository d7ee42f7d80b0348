"""twchat: a small multi-user chat server built on Twisted."""

__all__ = ["__version__"]

__version__ = "0.1.0"
