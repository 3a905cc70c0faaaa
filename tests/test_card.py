"""Tests for tfqa.export.card: which recorded evaluation describes an exported checkpoint."""

import json
import os

import pytest

from tfqa.export import card


def _write_results(model_dir, subdir, **results):
  directory = os.path.join(model_dir, "eval", subdir)
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, "eval_results.json")
  with open(path, "w", encoding="utf-8") as f:
    json.dump(results, f)
  return path


@pytest.fixture
def model_dir(tmp_path):
  """A run evaluated at steps 4 and 8 during training, 12 at the end, and
  checkpoint 8 by tfqa_eval on another file."""
  run = str(tmp_path / "run")
  _write_results(run, "", f1=50.0, global_step=12,
                 checkpoint=os.path.join(run, "checkpoints", "ckpt-12"))
  _write_results(run, "step-4", f1=20.0, global_step=4)
  _write_results(run, "step-8", f1=60.0, global_step=8)
  _write_results(run, "ckpt-8", f1=61.0, eval_file="other.json",
                 checkpoint=os.path.join(run, "checkpoints", "ckpt-8"))
  return run


@pytest.mark.parametrize("checkpoint,subdir,when", [
    ("checkpoints/ckpt-12", "", "at the end of training"),
    ("best/ckpt-4", "step-4", "during training"),
    ("checkpoints/ckpt-4", "step-4", "during training"),
    # Training's own evaluation of step 8 comes before tfqa_eval's.
    ("best/ckpt-8", "step-8", "during training"),
])
def test_the_exported_steps_results_are_found(model_dir, checkpoint, subdir,
                                              when):
  path = os.path.join(model_dir, "eval", subdir, "eval_results.json")
  with open(path, encoding="utf-8") as f:
    results = json.load(f)
  assert card.evaluation_of(model_dir, os.path.join(model_dir, checkpoint)
                            ) == (path, when, results)


def test_tfqa_eval_results_are_used_when_training_recorded_none(model_dir):
  os.remove(os.path.join(model_dir, "eval", "step-8", "eval_results.json"))
  assert card.evaluation_of(
      model_dir, os.path.join(model_dir, "checkpoints", "ckpt-8")) == (
          os.path.join(model_dir, "eval", "ckpt-8", "eval_results.json"),
          "by tfqa_eval",
          {"f1": 61.0, "eval_file": "other.json",
           "checkpoint": os.path.join(model_dir, "checkpoints", "ckpt-8")})


def test_results_of_another_step_never_describe_a_checkpoint(model_dir):
  assert card.evaluation_of(
      model_dir, os.path.join(model_dir, "checkpoints", "ckpt-6")) is None
  # Not the end-of-training results either, though that file exists.
  os.remove(os.path.join(model_dir, "eval", "step-4", "eval_results.json"))
  assert card.evaluation_of(
      model_dir, os.path.join(model_dir, "best", "ckpt-4")) is None
