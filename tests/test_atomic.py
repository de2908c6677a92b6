"""autograder.atomic: the one temp-then-rename writer behind every status, notes and CSV file."""

import json
import os
import stat

from autograder.atomic import write_atomic, write_json


def test_text_bytes_and_callable_land_whole_and_leave_no_temp(tmp_path):
    p = str(tmp_path / "sub" / "f.txt")  # the folder is made
    assert write_atomic(p, "héllo\n", encoding="utf-8")
    assert open(p, encoding="utf-8").read() == "héllo\n"
    write_atomic(p, b"\x00\x01", "wb")
    assert open(p, "rb").read() == b"\x00\x01"
    write_atomic(p, lambda f: f.write("a\r\nb"), newline="")
    assert open(p, newline="").read() == "a\r\nb"
    write_json(p, {"b": [1, 2], "a": None}, sort_keys=True)
    assert json.load(open(p)) == {"a": None, "b": [1, 2]}
    assert sorted(os.listdir(tmp_path / "sub")) == ["f.txt"], "a temporary file was left behind"


def test_first_writer_wins_without_replace_and_perm_is_set(tmp_path):
    p = str(tmp_path / "secret")
    assert write_atomic(p, "first", perm=0o600, replace=False)
    assert not write_atomic(p, "second", perm=0o600, replace=False)
    assert open(p).read() == "first", "replace=False overwrote an existing file"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["secret"]


def test_a_failing_writer_keeps_the_old_file(tmp_path):
    p = str(tmp_path / "status.json")
    write_json(p, {"state": "ok"})

    def broken(f):
        f.write("{half")
        raise RuntimeError("disk full")

    try:
        write_atomic(p, broken)
    except RuntimeError:
        pass
    assert json.load(open(p)) == {"state": "ok"}, "a failed write replaced the old content"
    assert os.listdir(tmp_path) == ["status.json"]
