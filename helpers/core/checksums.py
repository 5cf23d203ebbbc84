"""SHA-256 checksums of files, listed in ``sha256sum``'s format (``HASH  NAME`` a line), so that ``sha256sum -c``
checks them by hand too."""

from __future__ import annotations

import hashlib
from pathlib import Path


class ChecksumMismatch(ValueError):
    """A unit's file differs from the checksum written with it."""


def checksums(blobs: dict[str, bytes]) -> str:
    """Files' SHA-256 checksums in ``sha256sum``'s format (``HASH  NAME`` a line)."""
    return "".join(f"{hashlib.sha256(blob).hexdigest()}  {name}\n" for name, blob in blobs.items())


def verify(listing: Path, blobs: dict[str, bytes]) -> None:
    """Raise :class:`ChecksumMismatch` when a file of ``blobs`` (name → bytes) is not the one ``listing`` (a
    ``seed-N.sha256``) names; a unit stored before checksums were written has none and passes."""
    if not listing.exists():
        return
    expected = dict(reversed(line.split("  ", 1)) for line in listing.read_text().splitlines() if line)
    for name, blob in blobs.items():
        if expected.get(name) != hashlib.sha256(blob).hexdigest():
            raise ChecksumMismatch(f"{name} does not match its checksum")
