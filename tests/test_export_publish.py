"""Tests for tfqa.export.publish: atomic replacement through the Publisher seam; what a killed export leaves is cleaned up by the next one."""

import os
import sys

import pytest

from tfqa import export
from tfqa.export import publish

from conftest import start_command


def _dead_pid():
  """The id of a process that has exited (and was reaped)."""
  proc = start_command([sys.executable, "-c", "pass"])
  proc.communicate()
  return proc.pid


def _make(path, content="x"):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "file.txt"), "w", encoding="utf-8") as f:
    f.write(content)


def test_leftovers_of_a_killed_export_are_removed_or_restored(tmp_path):
  export_dir = str(tmp_path)
  models_dir = os.path.join(export_dir, "saved_model", "tfqa")
  dead = _dead_pid()
  _make(os.path.join(models_dir, "1"))
  _make(os.path.join(models_dir, f".tmp-2-{dead}"))
  _make(os.path.join(export_dir, f".tmp-pretrained-{dead}"), "new")
  # Killed between Publisher.publish's renames: pretrained/ is aside, nothing in place.
  _make(os.path.join(export_dir, f".old-pretrained-{dead}"), "previous")
  actions = export.recover_interrupted(export_dir, models_dir)
  assert sorted(os.listdir(export_dir)) == ["pretrained", "saved_model"]
  assert os.listdir(models_dir) == ["1"]
  with open(os.path.join(export_dir, "pretrained", "file.txt"),
            encoding="utf-8") as f:
    assert f.read() == "previous"
  assert sorted(actions) == sorted([
      f"removed {export_dir}/.tmp-pretrained-{dead}",
      f"restored {export_dir}/pretrained",
      f"removed {models_dir}/.tmp-2-{dead}"])


def test_an_aside_directory_whose_place_is_taken_is_removed(tmp_path):
  dead = _dead_pid()
  _make(os.path.join(tmp_path, "pretrained"), "newer")
  _make(os.path.join(tmp_path, f".old-pretrained-{dead}"), "older")
  export.recover_interrupted(str(tmp_path), str(tmp_path / "none"))
  assert os.listdir(tmp_path) == ["pretrained"]
  assert (tmp_path / "pretrained" / "file.txt").read_text() == "newer"


def test_directories_of_a_running_export_are_left_alone(tmp_path):
  running = os.getppid()  # alive: the process that started this test
  names = [f".tmp-3-{running}", f".old-pretrained-{running}",
           ".hidden-by-user", "notes"]
  for name in names:
    _make(os.path.join(tmp_path, name))
  assert export.recover_interrupted(str(tmp_path), str(tmp_path)) == []
  assert sorted(os.listdir(tmp_path)) == sorted(names)


def test_publisher_puts_the_old_directory_back_when_the_rename_in_fails(
    tmp_path):
  final, staged = tmp_path / "pretrained", tmp_path / ".tmp-pretrained-1"
  _make(str(final), "old")
  _make(str(staged), "new")
  calls = []

  def rename(source, destination):
    calls.append((os.path.basename(source), os.path.basename(destination)))
    if len(calls) == 2:
      raise OSError("disk gone (forced)")
    os.rename(source, destination)

  with pytest.raises(OSError, match="forced"):
    export.Publisher(rename=rename).publish(str(staged), str(final),
                                            overwrite=True)
  assert calls == [("pretrained", f".old-pretrained-{os.getpid()}"),
                   (".tmp-pretrained-1", "pretrained")]
  assert (final / "file.txt").read_text() == "old"
  assert sorted(os.listdir(tmp_path)) == [".tmp-pretrained-1", "pretrained"]


def test_publisher_never_replaces_without_overwrite(tmp_path):
  _make(str(tmp_path / "1"), "published meanwhile")
  _make(str(tmp_path / ".tmp-1-5"), "ours")
  with pytest.raises(ValueError, match=r"1 appeared while exporting \(another "
                                       r"export\?\); it was left as it is"):
    export.Publisher().publish(str(tmp_path / ".tmp-1-5"),
                               str(tmp_path / "1"), overwrite=False)
  assert (tmp_path / "1" / "file.txt").read_text() == "published meanwhile"


def test_publisher_publishes_into_an_empty_place_and_replaces_whole(tmp_path):
  _make(str(tmp_path / ".tmp-1-5"), "first")
  publish.Publisher().publish(str(tmp_path / ".tmp-1-5"), str(tmp_path / "1"),
                              overwrite=False)
  _make(str(tmp_path / ".tmp-1-6"), "second")
  publish.Publisher().publish(str(tmp_path / ".tmp-1-6"), str(tmp_path / "1"),
                              overwrite=True)
  assert os.listdir(tmp_path) == ["1"]
  assert (tmp_path / "1" / "file.txt").read_text() == "second"


def test_portable_directories_follow_the_newest_export(tmp_path):
  export_dir, staged = tmp_path / "export", tmp_path / "staged"
  _make(str(export_dir / "onnx"), "older onnx")
  _make(str(export_dir / "tflite"), "older tflite")
  _make(str(staged / "onnx"), "newer onnx")
  # The newest export has onnx/ only: tflite/ no longer describes it.
  publish.Publisher().publish_portable(str(staged), str(export_dir))
  assert os.listdir(export_dir) == ["onnx"]
  assert (export_dir / "onnx" / "file.txt").read_text() == "newer onnx"
  assert os.listdir(staged) == []


def test_an_existing_version_is_refused_naming_the_next_one(tmp_path):
  models_dir = tmp_path / "saved_model" / "tfqa"
  publish.refuse_existing(str(models_dir / "3"), str(models_dir))
  for version in ("1", "3"):
    _make(str(models_dir / version))
  with pytest.raises(ValueError, match=(
      rf"^{models_dir}/3 already exists and is never overwritten by "
      r"default\. Pass overwrite=True \(--overwrite\) to replace it, or "
      r"leave the version unset to write version 4\.$")):
    publish.refuse_existing(str(models_dir / "3"), str(models_dir))
