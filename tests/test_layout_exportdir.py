"""Tests for tfqa.layout.exportdir: the export layout's manifest reading, digests, versions and SavedModel signatures."""

import hashlib
import json

import pytest
import tensorflow as tf

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


def test_signature_specs_and_proto_of_a_saved_model(tmp_path):
  module = tf.Module()
  module.double = tf.function(
      lambda x: {"y": 2 * x},
      input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
  tf.saved_model.save(module, str(tmp_path), signatures={
      "serving_default": module.double.get_concrete_function()})
  assert exportdir.signature_specs(str(tmp_path)) == {
      "serving_default": {
          "inputs": {"x": {"dtype": "float32", "shape": [None, 3]}},
          "outputs": {"y": {"dtype": "float32", "shape": [None, 3]}}}}
  assert len(exportdir.saved_model_proto(str(tmp_path)).meta_graphs) == 1


def test_saved_model_proto_names_a_directory_without_one(tmp_path):
  with pytest.raises(ValueError, match=r"holds no saved_model.pb\. Expected "
                                       r"a directory written by "
                                       r"tf.saved_model.save"):
    exportdir.saved_model_proto(str(tmp_path))
