"""Tests for tfqa.layout.exportdir: the export layout's manifest reading, digests and versions."""

import hashlib
import json

import pytest

from tfqa.layout import exportdir


def test_read_manifest(tmp_path):
  (tmp_path / "manifest.json").write_text(json.dumps({"version": 3}))
  assert exportdir.read_manifest(str(tmp_path)) == {"version": 3}


def test_read_manifest_names_a_missing_manifest(tmp_path):
  with pytest.raises(ValueError, match=rf"^{tmp_path} has no manifest.json; "
                                       rf"expected a directory written by "
                                       rf"tfqa_export\.$"):
    exportdir.read_manifest(str(tmp_path))


def test_file_digests_cover_every_file_by_relative_path(tmp_path):
  (tmp_path / "sub").mkdir()
  (tmp_path / "a.txt").write_bytes(b"a")
  (tmp_path / "sub" / "b.bin").write_bytes(b"bb")
  assert exportdir.file_digests(str(tmp_path)) == {
      "a.txt": hashlib.sha256(b"a").hexdigest(),
      "sub/b.bin": hashlib.sha256(b"bb").hexdigest()}


def test_versions_count_only_numbered_directories(tmp_path):
  assert exportdir.next_version(str(tmp_path / "missing")) == 1
  for name in ("1", "3", "7", "x", "10a", ".tmp-9-1"):
    (tmp_path / name).mkdir()
  (tmp_path / "8").write_text("a file, not a version")
  assert exportdir.existing_versions(str(tmp_path)) == [1, 3, 7]
  assert exportdir.next_version(str(tmp_path)) == 8
