"""Tests for tfqa.layout.json_files: atomic writes and JSON reading errors."""

import json
import os

import pytest

from tfqa.layout import json_files


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
  path = tmp_path / "sub" / "a.json"
  json_files.atomic_write_json(str(path), {"b": 1, "é": "ü"})
  json_files.atomic_write_json(str(path), {"c": [1, 2]})
  assert json.loads(path.read_text(encoding="utf-8")) == {"c": [1, 2]}
  assert os.listdir(tmp_path / "sub") == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
  path = tmp_path / "a.json"
  json_files.atomic_write_json(str(path), {"ok": True})
  with pytest.raises(ValueError, match="Out of range float values"):
    json_files.atomic_write_json(str(path), {"bad": float("nan")})
  assert json.loads(path.read_text()) == {"ok": True}
  assert os.listdir(tmp_path) == ["a.json"]


@pytest.mark.parametrize("raw,match", [
    (b"{oops", r"x.json: the thing is not valid JSON: Expecting property name"
               r" enclosed in double quotes at line 1 column 2"),
    (b'{"a": "\xff"}', r"x.json: the thing is not valid UTF-8 \(byte 7\)"),
])
def test_read_json_errors_name_the_file(tmp_path, raw, match):
  path = tmp_path / "x.json"
  path.write_bytes(raw)
  with pytest.raises(ValueError, match=match):
    json_files.read_json(str(path), what="the thing")


def test_read_json_missing_file_raises_file_not_found(tmp_path):
  with pytest.raises(FileNotFoundError):
    json_files.read_json(str(tmp_path / "absent.json"), what="x")


def test_atomic_write_gives_the_mode_open_would(tmp_path):
  umask = os.umask(0o022)
  try:
    path = tmp_path / "manifest.json"
    json_files.atomic_write_json(str(path), {"a": 1})
    assert path.stat().st_mode & 0o777 == 0o644
    os.umask(0o077)
    json_files.atomic_write_text(str(path), "x")
    assert path.stat().st_mode & 0o777 == 0o600
  finally:
    os.umask(umask)
