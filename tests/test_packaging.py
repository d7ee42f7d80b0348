"""What ``pip install .`` (not editable) ships: every module of twchat."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_with_code_is_listed_and_importable() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
            "packages"
        ]
    )
    with_code = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "twchat").rglob("*.py")
    }
    # A folder without __init__.py is a namespace package: setuptools'
    # explicit list would still name it, but find-based tools would not.
    missing_init = sorted(
        name
        for name in with_code
        if not (ROOT.joinpath(*name.split(".")) / "__init__.py").exists()
    )
    assert missing_init == []
    assert with_code - listed == set()
    # The plugin folder is a namespace portion: it must have no __init__.py.
    assert "twisted.plugins" in listed
    assert not (ROOT / "twisted" / "plugins" / "__init__.py").exists()
