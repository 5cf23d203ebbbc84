"""Folders the user can move: an explicit argument wins, then an environment variable, then the repository."""

from __future__ import annotations

import os
from pathlib import Path

import helpers

REPOSITORY = Path(helpers.__file__).resolve().parent.parent
"""The folder holding the ``helpers`` package (the repository in a checkout): found from the package, not from this
module's depth in it."""


def configured_folder(root: str | os.PathLike | None, env_var: str, default: str) -> Path:
    """``root`` if given, else ``$env_var`` if set, else ``default`` inside the repository."""
    if root is not None:
        return Path(root)
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    return REPOSITORY / default
