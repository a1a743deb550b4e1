"""Write report files atomically: a reader never sees half a report, even after Ctrl-C."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from imdiag.core.captures import nesting_error, parse_json
from imdiag.core.errors import InputError


def check_writable(path: str | os.PathLike[str] | None, option: str) -> None:
    """Fail before anything is measured if ``path`` cannot be written later (InputError, exit 2):
    a directory, a missing directory, or a directory where no file can be created."""
    if not path:
        return
    given = Path(path)
    if _special_file(given):  # a device or FIFO is written in place (write_atomic)
        if not os.access(given, os.W_OK):
            raise InputError(f"invalid {option} {given}: it is not writable")
        return
    target = Path(os.path.realpath(given))  # a symlink: its target is what gets replaced
    if target.is_dir():
        raise InputError(f"invalid {option} {given}: it is a directory")
    directory = target.parent
    shown = directory if given.is_symlink() else (given.parent if str(given.parent) else Path("."))
    if not directory.is_dir():
        raise InputError(f"invalid {option} {given}: directory {shown} does not exist")
    # Create and remove a file where write_atomic will create its own: os.access() says yes to
    # root in /proc, and on a read-only mount.
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InputError(f"invalid {option} {given}: cannot create a file in {shown}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


def _new_file_mode(target: Path) -> int:
    """The mode the report gets: the file's own when it exists (a 0644 report stays 0644),
    else what the umask gives a new file (mkstemp alone would make every report 0600)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _special_file(path: Path) -> bool:
    """True when ``path`` (its symlinks followed) is a device, FIFO or socket: not a file to replace."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def write_atomic(path: str | os.PathLike[str], content: str | bytes) -> Path:
    """Write ``content`` to ``path`` through a temporary file renamed over it; returns the file written.

    A symlink is followed: the file it points to is replaced, next to itself, and the link stays.
    A device, FIFO or socket (``/dev/stdout``, a named pipe) is written in place, not atomically:
    renaming over it would replace the device with a regular file.
    """
    given = Path(path)
    # A lone surrogate (a message id, a file name) is written as its \udXXX escape: in JSON that
    # is the same string, and no report fails to be written over one character.
    data = content.encode("utf-8", "backslashreplace") if isinstance(content, str) else content
    if _special_file(given):
        with open(given, "wb") as f:
            f.write(data)
        return given
    target = Path(os.path.realpath(given))
    directory = target.parent
    if not directory.is_dir():
        shown = given.parent if str(given.parent) else Path(".")
        raise InputError(f"cannot write {given}: directory {shown} does not exist")
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


def read_json(path: str, what: str) -> Any:
    """A JSON file the user named (an earlier report), read whole; InputError (exit 2) naming
    ``what``, the file and the place of a syntax error or of nesting too deep."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {path}: not UTF-8 text") from None
    try:
        return parse_json(text)  # any JSON: integers of 4,300+ digits too
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{what} {nesting_error(Path(path), text)}") from None
