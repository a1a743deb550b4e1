"""Write report files atomically: a reader never sees half a report, even after Ctrl-C."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from imdiag.core.errors import InputError


def check_writable(path: str | os.PathLike[str] | None, option: str) -> None:
    """Fail before anything is measured if ``path`` cannot be written later (InputError, exit 2)."""
    if not path:
        return
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise InputError(f"invalid {option} {target}: it is a directory")
    if not directory.is_dir():
        raise InputError(f"invalid {option} {target}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"invalid {option} {target}: directory {directory} is not writable")


def _new_file_mode(target: Path) -> int:
    """The mode the report gets: the file's own when it exists (a 0644 report stays 0644),
    else what the umask gives a new file (mkstemp alone would make every report 0600)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: str | os.PathLike[str], content: str | bytes) -> Path:
    target = Path(path)
    # A lone surrogate (a message id, a file name) is written as its \udXXX escape: in JSON that
    # is the same string, and no report fails to be written over one character.
    data = content.encode("utf-8", "backslashreplace") if isinstance(content, str) else content
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"cannot write {target}: directory {directory} does not exist")
    mode = _new_file_mode(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target
