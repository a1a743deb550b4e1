"""Write report files atomically: a reader never sees half a report, even after Ctrl-C."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

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


def write_atomic(path: str | os.PathLike[str], content: str | bytes) -> Path:
    target = Path(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"cannot write {target}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
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
    ``what``, the file and the place of a syntax error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {path}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
