"""Folders the user can move: an explicit argument wins, then an environment variable, then the repository."""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def configured_folder(root: str | os.PathLike | None, env_var: str, default: str) -> Path:
    """``root`` if given, else ``$env_var`` if set, else ``default`` inside the repository."""
    if root is not None:
        return Path(root)
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    return REPOSITORY / default
