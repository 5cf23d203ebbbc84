"""Files written safely under concurrent writers and killed processes.

Every file is first written under a unique temporary name in its target folder, then renamed into place: a reader
sees either no file or a whole one, two writers of the same file never touch each other's temporary, and a file
found already in place counts as written. A killed writer leaves only its temporary behind, which
:func:`remove_stale_temporaries` deletes once its process is gone. A folder that cannot be written (read-only, no
permission, full) is reported early, in one line that names it and the fix (:func:`check_writable`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

HOST = socket.gethostname().replace(".", "-")
SUFFIX = ".tmp"
MIN_FREE_BYTES = 64 * 2**20  # a folder with less free space than this is reported as full before any work


class FolderNotWritable(OSError):
    """A folder the project must write to is read-only, not permitted, or full."""

    def __str__(self) -> str:
        return str(self.strerror)


def temporary_name(path: Path) -> Path:
    """A unique temporary name beside ``path``: ``.NAME.HOST.PID.TOKEN.tmp`` (hidden; names its writer)."""
    return path.with_name(f".{path.name}.{HOST}.{os.getpid()}.{secrets.token_hex(4)}{SUFFIX}")


def _writer_alive(temporary: Path) -> bool:
    """Whether the process that writes ``temporary`` may still be running (a writer on another host is assumed to)."""
    parts = temporary.name.rsplit(".", 4)  # [.NAME, HOST, PID, TOKEN, tmp]
    if len(parts) != 5 or parts[1] != HOST or not parts[2].isdigit():
        return True
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the temporaries in ``folder`` whose writing process on this host has died; return how many."""
    removed = 0
    for temporary in Path(folder).glob(f".*{SUFFIX}"):
        if not _writer_alive(temporary):
            temporary.unlink(missing_ok=True)
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a unique temporary beside ``path`` for writing; on success it is flushed to disk and renamed to ``path``
    (replacing any file there), on error deleted."""
    path = Path(path)
    temporary = temporary_name(path)
    try:
        with open(temporary, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException as err:
        temporary.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _explained(err, path.parent) from err
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode())


def copy_stream(source: IO[bytes], path: str | os.PathLike) -> None:
    """Copy a readable binary stream into ``path`` atomically."""
    with atomic_output(path, "wb") as f:
        shutil.copyfileobj(source, f)


def _explained(err: OSError, folder: Path) -> OSError:
    """``err`` as a :class:`FolderNotWritable` naming ``folder`` when it says the folder cannot be written."""
    if isinstance(err, FolderNotWritable):
        return err
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return FolderNotWritable(err.errno, f"{folder} is not writable ({os.strerror(err.errno)})")
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return FolderNotWritable(err.errno, f"{folder} is full ({os.strerror(err.errno)})")
    return err


def check_writable(folder: str | os.PathLike, remedy: str, min_free: int = MIN_FREE_BYTES) -> Path:
    """Make sure ``folder`` exists and can take files, or raise one :class:`FolderNotWritable` line naming it and
    ``remedy`` (e.g. which environment variable moves it). Checks creation, a real write, and free space."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_name(folder / "write-check")
        try:
            probe.write_bytes(b"ok")
        finally:
            probe.unlink(missing_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as err:
        reason = _explained(err, folder)
        message = reason.strerror if isinstance(reason, FolderNotWritable) else f"{folder}: {err.strerror or err}"
        raise FolderNotWritable(err.errno, f"{message}; {remedy}") from None
    if free < min_free:
        raise FolderNotWritable(errno.ENOSPC, f"{folder} is full ({free / 2**20:.0f} MiB free, at least "
                                              f"{min_free / 2**20:.0f} MiB needed); {remedy}")
    return folder


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, name: str = ".lock") -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (a lock file in it) for one-at-a-time work, e.g. a download: the others
    wait, then find the work done."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def extract_folder(archive_members: Callable[[Path], None], target: Path) -> None:
    """Extract into a unique temporary folder beside ``target``, then rename it to ``target``; a ``target`` already in
    place (another process extracted it) counts as done. ``archive_members(folder)`` extracts into ``folder``."""
    temporary = temporary_name(target)
    try:
        temporary.mkdir(parents=True)
        archive_members(temporary)
        try:
            os.rename(temporary, target)
        except OSError as err:
            if not (err.errno in (errno.EEXIST, errno.ENOTEMPTY) and target.is_dir()):
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
