"""Atomic file replacement: write a temporary file beside the target, fsync it, rename it over.

A reader of the target sees the old file or the new one, never a part of either, even if the
writer is killed. A killed writer leaves its temporary file behind; the next write of the same
target removes it, but only once its writer is gone: each temporary file is named after its
writer's process id and locked (flock) while it is written, and one whose process still runs, or
whose lock is held, is never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows: no flock, and no safe way here to ask whether a process lives
    fcntl = None  # type: ignore[assignment]

# mkstemp's random part: 8 characters of [a-z0-9_].
_RANDOM = re.compile(r"[a-z0-9_]{8}")


def temp_prefix(path: Path) -> str:
    """The start of the names of `path`'s temporary files: '.NAME.' (then 'PID.RANDOM.tmp')."""
    return f".{path.name}."


def _writer_pid(path: Path, name: str) -> int | None:
    """The writer's process id in the name of one of `path`'s temporary files, else None."""
    prefix = temp_prefix(path)
    if not (name.startswith(prefix) and name.endswith(".tmp")):
        return None
    pid, dot, rand = name[len(prefix):-len(".tmp")].partition(".")
    if not (dot and pid.isdigit() and pid[0] != "0" and _RANDOM.fullmatch(rand)):
        return None
    return int(pid)


def _alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine (a process of another user counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists; anything else: assume it does
        return True
    return True


def remove_stale_temps(path: Path) -> list[str]:
    """Delete the temporary files that killed writers of `path` left; return their names.

    A file is stale when its writer's process is gone and nobody holds its lock. Files of other
    names, of live writers, links and anything unreadable are left alone. POSIX only (elsewhere
    nothing is removed).
    """
    if fcntl is None:
        return []
    removed = []
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            pid = _writer_pid(path, entry.name)
            if pid is None or _alive(pid) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: someone still writes it
                os.unlink(entry.path)
                removed.append(entry.name)
            except OSError:
                pass
            finally:
                os.close(fd)
    return removed


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable, where the system lets a folder be opened (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(filepath: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `filepath` in one rename when the block ends without error.

    On an error the target is untouched and the temporary file removed; the target's mode is kept
    (rw-r--r-- for a new file). Stale temporary files of earlier, killed writers are removed first.
    """
    path = Path(filepath)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{temp_prefix(path)}{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if fcntl is not None:  # held until the file is closed, after the rename
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            remove_stale_temps(path)
            if hasattr(os, "fchmod"):  # mkstemp makes 0o600; keep the target's mode, else rw-r--r--
                os.fchmod(fh.fileno(), path.stat().st_mode & 0o777 if path.is_file() else 0o644)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
