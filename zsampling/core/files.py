"""Writing files inside an output folder, and nowhere else.

An output folder may hold things zsampling did not put there: a symbolic link planted where the
manifest goes, a folder in an output's place. Whatever a folder holds, zsampling writes only regular
files inside it:

- files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and appended to with ``O_NOFOLLOW``, so
  a planted link is refused by the kernel, never followed (`UnsafePath` names it);
- a file is replaced atomically: written to a temporary file in the same folder, synced, renamed
  over the target (which must be missing or a regular file), and the folder synced, so that a
  crash, even SIGKILL, leaves the old file or the new one, never half of one;
- new files get the permissions the umask gives (``0o666 & ~umask``), like any file the user makes:
  ``os.open`` with mode ``0o666`` lets the kernel apply the umask (``tempfile.mkstemp`` would make
  every output ``0o600``).

Temporary files are named ``.<key>.<random>.zs-tmp``; ``key`` says whose they are, so that a later
run removes a stale one only once it may (see `zsampling.runs.outputs.sweep`).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zsampling.core.errors import ZSamplingError

TMP_SUFFIX = ".zs-tmp"
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted as a file must not block the open
BINARY = getattr(os, "O_BINARY", 0)


class UnsafePath(ZSamplingError):
    """Something other than a regular file sits where zsampling would write (exit code 2)."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is {what}; zsampling writes only regular files in its output folder and "
            "never through links: move it away (or choose another run.output)"
        )


def entry_kind(path: Path) -> str | None:
    """What ``path`` itself is (a link is not followed), or None when nothing is there."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:  # no such entry can exist
            return None
        raise
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file (FIFO, socket or device)"


def require_file_or_nothing(path: Path) -> bool:
    """True when ``path`` is a regular file, False when missing; `UnsafePath` otherwise."""
    kind = entry_kind(path)
    if kind not in (None, "file"):
        raise UnsafePath(path, kind or "")
    return kind == "file"


def open_nofollow(path: Path, flags: int, mode: int = 0o666) -> int:
    """``os.open`` that refuses links and anything but a regular file (`UnsafePath`)."""
    if not NOFOLLOW:  # no O_NOFOLLOW (Windows): check first; the open below is the best we have
        require_file_or_nothing(path)
    try:
        fd = os.open(path, flags | NOFOLLOW | CLOEXEC | NONBLOCK | BINARY, mode)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EMLINK):
            raise UnsafePath(path, entry_kind(path) or "not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePath(path, entry_kind(path) or "not a regular file")
    return fd


def append_bytes(path: Path, data: bytes, sync: bool = True, newline_first: bool = False) -> None:
    """Append ``data`` to the regular file ``path`` (created if missing), never through a link
    (symbolic or hard: a file with several names is refused, it may be another's).

    With ``newline_first``, a file whose last byte is not a newline (a line torn by a killed
    writer) gets one first, so ``data`` starts a line of its own.
    """
    fd = open_nofollow(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        if os.fstat(fd).st_nlink > 1:  # appending would change the other names' file too
            raise UnsafePath(path, "a file with other hard links")
        if newline_first:
            end = os.lseek(fd, 0, os.SEEK_END)
            if end > 0:
                os.lseek(fd, end - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    data = b"\n" + data
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_bytes(path: Path) -> bytes:
    """The content of the regular file ``path`` (b"" when missing), never through a link."""
    if not require_file_or_nothing(path):
        return b""
    fd = open_nofollow(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def temporary(folder: Path, key: str) -> tuple[Path, int]:
    """A new, empty temporary file ``.<key>.<random>.zs-tmp`` in ``folder``, and the permission
    bits the umask gave it."""
    for _ in range(100):
        tmp = folder / f".{key}.{secrets.token_hex(6)}{TMP_SUFFIX}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC, 0o666)
        except FileExistsError:
            continue
        try:
            return tmp, stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    raise FileExistsError(f"no free temporary name for {key!r} in {folder}")


def temporary_key(name: str) -> str | None:
    """The key of a temporary file name made by `temporary` (None for any other name)."""
    if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
        return None
    key, dot, token = name[1 : -len(TMP_SUFFIX)].rpartition(".")
    return key if dot and key and len(token) == 12 else None


def sync_folder(folder: Path) -> None:
    """fsync a folder so a rename in it survives a power cut (a no-op where folders can't be
    opened, i.e. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], Any], key: str | None = None) -> None:
    """Write ``path`` through a temporary file in its folder, synced, then renamed into place.

    ``write(tmp)`` writes the content to the path it is given. ``key`` names the temporary file
    (default: the target's name). The target must be missing or a regular file (`UnsafePath`).
    The file gets the mode the umask gave the temporary file, whatever ``write`` did (writers
    that make their own file, such as safetensors', create it 0o600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    require_file_or_nothing(path)
    tmp, mode = temporary(path.parent, key or path.name)
    try:
        write(tmp)
        fd = open_nofollow(tmp, os.O_RDONLY)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        require_file_or_nothing(path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)
