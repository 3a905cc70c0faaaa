"""Tests for tfqa.layout.integrity: paths kept inside their directory, export files checked against their manifest's digests."""

import json
import os

import pytest

from tfqa.layout import exportdir
from tfqa.layout import integrity


@pytest.mark.parametrize("path, expected", [
    ("ckpt-3", "ckpt-3"),
    ("sub/../ckpt-3", "ckpt-3"),
    ("./a/b", "a/b"),
])
def test_contained_path_accepts_paths_inside(tmp_path, path, expected):
  assert integrity.contained_path(str(tmp_path), path, source="f") == str(
      tmp_path / expected)


def test_contained_path_accepts_an_absolute_path_inside(tmp_path):
  inside = str(tmp_path / "ckpt-1")
  assert integrity.contained_path(str(tmp_path), inside, source="f") == inside


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", ".."])
def test_contained_path_refuses_paths_outside(tmp_path, path):
  with pytest.raises(integrity.PathEscapeError,
                     match=rf"^state: names '{path}', which is outside "
                           rf"{tmp_path}; refused \(a damaged or planted "
                           rf"file\)"):
    integrity.contained_path(str(tmp_path), path, source="state:")


def test_contained_path_refuses_a_symlink_out(tmp_path):
  (tmp_path / "root").mkdir()
  (tmp_path / "outside").mkdir()
  os.symlink(tmp_path / "outside", tmp_path / "root" / "link")
  with pytest.raises(integrity.PathEscapeError, match="'link/x', which is "
                                                      "outside"):
    integrity.contained_path(str(tmp_path / "root"), "link/x", source="s")


@pytest.mark.parametrize("path", ["", "a\0b", None, 3])
def test_contained_path_refuses_non_paths(tmp_path, path):
  with pytest.raises(integrity.PathEscapeError, match="s: invalid path"):
    integrity.contained_path(str(tmp_path), path, source="s")


def _fake_export(root):
  """An export directory with a few files and a manifest describing them."""
  version = root / "saved_model" / "tfqa" / "1"
  (version / "variables").mkdir(parents=True)
  (version / "saved_model.pb").write_bytes(b"graph")
  (version / "variables" / "variables.index").write_bytes(b"index")
  (root / "pretrained").mkdir()
  (root / "pretrained" / "config.json").write_text("{}")
  (root / "pretrained" / "tf_model.h5").write_bytes(b"weights")
  manifest = {"model_name": "tfqa", "version": 1,
              "paths": {"saved_model": "saved_model/tfqa/1",
                        "pretrained": "pretrained"},
              "sha256": {"saved_model": exportdir.file_digests(str(version)),
                         "pretrained": exportdir.file_digests(
                             str(root / "pretrained"))}}
  (root / "manifest.json").write_text(json.dumps(manifest))
  return manifest


def test_verify_digests_passes_an_intact_export(tmp_path):
  manifest = _fake_export(tmp_path)
  assert integrity.verify_digests(str(tmp_path)) == manifest


def test_verify_digests_names_every_damaged_file(tmp_path):
  _fake_export(tmp_path)
  (tmp_path / "pretrained" / "tf_model.h5").write_bytes(b"weightz")
  os.remove(tmp_path / "saved_model" / "tfqa" / "1" / "saved_model.pb")
  (tmp_path / "pretrained" / "extra.bin").write_bytes(b"")
  with pytest.raises(integrity.ManifestMismatchError) as error:
    integrity.verify_digests(str(tmp_path))
  assert str(error.value) == (
      f"{tmp_path} does not match {tmp_path}/manifest.json: "
      f"saved_model/tfqa/1/saved_model.pb is missing; "
      f"pretrained/tf_model.h5 was modified (SHA-256 "
      f"{exportdir.file_digests(str(tmp_path / 'pretrained'))['tf_model.h5'][:12]}"
      f"…, manifest "
      f"{json.load(open(tmp_path / 'manifest.json'))['sha256']['pretrained']['tf_model.h5'][:12]}"
      f"…); pretrained/extra.bin is not in the manifest. Re-export the model "
      f"(tfqa_export) or restore the original files.")


def test_verify_digests_refuses_a_manifest_path_outside(tmp_path):
  manifest = _fake_export(tmp_path)
  manifest["paths"]["pretrained"] = "../elsewhere"
  (tmp_path / "manifest.json").write_text(json.dumps(manifest))
  with pytest.raises(integrity.ManifestMismatchError,
                     match=r"manifest.json is not a valid tfqa export "
                           r"manifest: PathEscapeError: .*'../elsewhere', "
                           r"which is outside"):
    integrity.verify_digests(str(tmp_path))


def test_verify_digests_refuses_a_manifest_without_hashes(tmp_path):
  manifest = _fake_export(tmp_path)
  del manifest["sha256"]
  (tmp_path / "manifest.json").write_text(json.dumps(manifest))
  with pytest.raises(integrity.ManifestMismatchError,
                     match=r"not a valid tfqa export manifest: KeyError: "
                           r"'sha256'"):
    integrity.verify_digests(str(tmp_path))


def test_verify_digests_of_one_part_names_files_relative_to_the_subject(
    tmp_path):
  _fake_export(tmp_path)
  version = tmp_path / "saved_model" / "tfqa" / "1"
  (version / "variables" / "variables.index").write_bytes(b"changed")
  (tmp_path / "pretrained" / "extra.bin").write_bytes(b"")  # not checked
  with pytest.raises(integrity.ManifestMismatchError,
                     match=rf"^Refusing to load {version}: its files do not "
                           rf"match {tmp_path}/manifest.json: "
                           rf"variables/variables.index was modified "
                           rf"\(SHA-256 [0-9a-f]{{12}}…, manifest "
                           rf"[0-9a-f]{{12}}…\)\. Re-export"):
    integrity.verify_digests(str(tmp_path), parts=("saved_model",),
                             subject=str(version))


def test_verify_digests_of_one_file(tmp_path):
  manifest = _fake_export(tmp_path)
  (tmp_path / "onnx").mkdir()
  (tmp_path / "onnx" / "model.onnx").write_bytes(b"onnx")
  (tmp_path / "onnx" / "other.onnx").write_bytes(b"not listed, not checked")
  manifest["sha256"]["onnx"] = {
      "model.onnx": exportdir.file_digest(str(tmp_path / "onnx" /
                                              "model.onnx"))}
  (tmp_path / "manifest.json").write_text(json.dumps(manifest))
  model = str(tmp_path / "onnx" / "model.onnx")
  assert integrity.verify_digests(str(tmp_path), parts=("onnx/model.onnx",),
                                  subject=model) == manifest
  other = str(tmp_path / "onnx" / "other.onnx")
  with pytest.raises(integrity.ManifestMismatchError,
                     match=rf"^Refusing to load {other}: .*: other.onnx is "
                           rf"not in the manifest\. Re-export"):
    integrity.verify_digests(str(tmp_path), parts=("onnx/other.onnx",),
                             subject=other)
