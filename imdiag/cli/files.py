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
