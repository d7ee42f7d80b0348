"""twchat: a small multi-user chat server built on Twisted."""

__all__ = ["__version__", "version_line"]

__version__ = "0.1.0"


def version_line(program: str) -> str:
    """What ``--version`` prints: ours first, then what we run on."""
    import platform

    import twisted

    return (
        f"{program} (twchat) {__version__} "
        f"(Twisted {twisted.__version__}, Python {platform.python_version()})"
    )
