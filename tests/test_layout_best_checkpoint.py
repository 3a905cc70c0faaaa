"""Tests for tfqa.layout.best_checkpoint: which evaluation wins, what is kept and recorded, resolving "best"."""

import json
import os

import pytest

from tfqa.layout import best_checkpoint


def _writer(written):
  def write(prefix):
    written.append(prefix)
    for suffix in (".index", ".data-00000-of-00001"):
      with open(prefix + suffix, "w", encoding="utf-8") as f:
        f.write(prefix)
  return write


def _offer(model_dir, step, f1, written, *, metric="f1", exact=50.0):
  return best_checkpoint.update(
      str(model_dir), metric=metric, step=step,
      metrics={"exact": exact, "f1": f1, "total": 11},
      write_checkpoint=_writer(written))


def test_better_evaluations_replace_the_best_and_ties_keep_the_earlier(
    tmp_path):
  written = []
  assert _offer(tmp_path, 4, 40.0, written)
  assert _offer(tmp_path, 8, 55.5, written)
  assert not _offer(tmp_path, 12, 55.5, written)  # a tie
  assert not _offer(tmp_path, 16, 30.0, written)
  assert written == [f"{tmp_path}/best/ckpt-4", f"{tmp_path}/best/ckpt-8"]
  assert json.loads((tmp_path / "best_checkpoint.json").read_text()) == {
      "metric": "f1", "value": 55.5, "step": 8, "checkpoint": "best/ckpt-8",
      "metrics": {"exact": 50.0, "f1": 55.5, "total": 11}}
  # The older best is deleted once the record names the new one.
  assert sorted(os.listdir(tmp_path / "best")) == [
      "ckpt-8.data-00000-of-00001", "ckpt-8.index"]


def test_the_same_step_again_keeps_its_first_record(tmp_path):
  written = []
  assert _offer(tmp_path, 8, 55.5, written)
  # A resumed run evaluates step 8 again (equal or, without
  # --deterministic, other numbers): nothing is rewritten.
  assert _offer(tmp_path, 8, 60.0, written)
  assert written == [f"{tmp_path}/best/ckpt-8"]
  assert best_checkpoint.read_record(str(tmp_path))["value"] == 55.5


def test_a_record_under_another_metric_is_replaced(tmp_path):
  written = []
  assert _offer(tmp_path, 8, 55.5, written)
  assert _offer(tmp_path, 12, 10.0, written, metric="exact", exact=20.0)
  record = best_checkpoint.read_record(str(tmp_path))
  assert (record["metric"], record["value"], record["step"]) == (
      "exact", 20.0, 12)


def test_stale_files_of_a_killed_update_are_cleaned_up(tmp_path):
  written = []
  (tmp_path / "best").mkdir()
  (tmp_path / "best" / "ckpt-6.index").write_text("half written")
  assert _offer(tmp_path, 8, 55.5, written)
  assert sorted(os.listdir(tmp_path / "best")) == [
      "ckpt-8.data-00000-of-00001", "ckpt-8.index"]


def test_resolve_maps_best_to_the_recorded_prefix(tmp_path):
  _offer(tmp_path, 8, 55.5, [])
  assert best_checkpoint.resolve(str(tmp_path), "best") == (
      f"{tmp_path}/best/ckpt-8")
  assert best_checkpoint.resolve(str(tmp_path), "x/ckpt-3") == "x/ckpt-3"
  assert best_checkpoint.resolve(str(tmp_path), None) is None


def test_resolve_without_a_best_names_the_fix(tmp_path):
  with pytest.raises(ValueError, match=(
      rf"^checkpoint=best: {tmp_path} has no best checkpoint \(no "
      rf"best_checkpoint\.json\); expected a run trained with --keep_best=f1 "
      rf"or --keep_best=exact and evaluated at least once\. Resume it with "
      rf"--keep_best=f1 --eval_every_steps=N, or pass a checkpoint "
      rf"prefix\.$")):
    best_checkpoint.resolve(str(tmp_path), "best")


def test_describe_says_whether_a_checkpoint_is_the_best(tmp_path):
  assert best_checkpoint.describe(str(tmp_path), "ckpt-3") is None
  _offer(tmp_path, 8, 55.5, [])
  assert best_checkpoint.describe(str(tmp_path),
                                  f"{tmp_path}/best/ckpt-8") == (
      "This is the run's best checkpoint by f1 (--keep_best), from step 8 "
      "(exact 50, f1 55.5).")
  assert best_checkpoint.describe(
      str(tmp_path), f"{tmp_path}/checkpoints/ckpt-12") == (
          "This is not the run's best checkpoint by f1: that is step 8 "
          "(exact 50, f1 55.5); export it with --checkpoint=best.")
