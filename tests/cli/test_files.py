"""Report files: written atomically, with the mode a user expects, whatever the text holds."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from imdiag.cli.common import write_json
from imdiag.cli.files import check_writable, write_atomic
from imdiag.core.errors import InputError


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_report_gets_the_umask_mode_and_an_existing_one_keeps_its_own(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.json", "{}")
        assert mode(tmp_path / "new.json") == 0o644  # not mkstemp's 0600
        shared = tmp_path / "shared.json"
        shared.write_text("old")
        shared.chmod(0o664)
        write_atomic(shared, "new")
        assert mode(shared) == 0o664 and shared.read_text() == "new"
        private = tmp_path / "private.json"
        private.write_text("old")
        private.chmod(0o600)
        write_atomic(private, "new")
        assert mode(private) == 0o600
    finally:
        os.umask(old)


def test_a_lone_surrogate_in_a_report_is_written_as_its_json_escape(tmp_path):
    path = tmp_path / "report.json"
    write_json(str(path), {"message_id": "id\ud800", "type": "中"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"message_id": "id\ud800", "type": "中"}


def test_a_symlinked_report_replaces_the_file_the_link_points_to_and_the_link_stays(tmp_path):
    real = tmp_path / "reports" / "report.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    write_json(str(link), {"new": 1})
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text()) == {"new": 1}
    assert sorted(p.name for p in real.parent.iterdir()) == ["report.json"]  # no temp file left


def test_a_fifo_is_written_in_place_not_replaced_by_a_regular_file(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_atomic(fifo, "through the pipe")
    reader.join(timeout=10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.fifo"]


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "to-dir").symlink_to(tmp_path / "dir")
    cases = [
        (tmp_path / "dir", "it is a directory"),
        (tmp_path / "to-dir", "it is a directory"),
        (tmp_path / "missing" / "r.json", f"directory {tmp_path / 'missing'} does not exist"),
    ]
    if os.path.isdir("/proc/self"):  # procfs: os.access() says root may write there, yet no file can be created
        cases.append((tmp_path / "to-proc.json", "cannot create a file in /proc"))
        (tmp_path / "to-proc.json").symlink_to("/proc/imdiag-report.json")
    for path, why in cases:
        with pytest.raises(InputError, match=f"^invalid --json {path}: .*") as raised:
            check_writable(str(path), "--json")
        assert why in str(raised.value)
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == []
    check_writable(str(tmp_path / "dir" / "r.json"), "--json")  # writable: no error, no file left
    assert list((tmp_path / "dir").iterdir()) == []
