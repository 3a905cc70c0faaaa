"""Tests for tfqa.export.threshold: the no-answer threshold an export applies (the run's, a number, or the best measured)."""

import json

import pytest

from tfqa import config
from tfqa import export
from tfqa.export import threshold
from tfqa.inference import trained_model


def _fake_trained(tmp_path, *, version_2=True, checkpoint="ckpt-8"):
  """A TrainedModel with only what the threshold choice reads."""
  run_config = config.RunConfig(
      model=config.ModelConfig(model="m"), data=config.DataConfig(),
      decode=config.DecodeConfig(version_2_with_negative=version_2,
                                 null_score_diff_threshold=0.5))
  return trained_model.TrainedModel(
      model=None, tokenizer=None, run_config=run_config,
      checkpoint=str(tmp_path / "checkpoints" / checkpoint),
      model_dir=str(tmp_path))


def _write_eval(directory, *, checkpoint, best, odds):
  directory.mkdir(parents=True, exist_ok=True)
  (directory / "eval_results.json").write_text(json.dumps(
      {"f1": 1.0, "best_f1_thresh": best, "checkpoint": checkpoint}))
  (directory / "null_odds.json").write_text(json.dumps(
      {f"q{i}": x for i, x in enumerate(odds)}))


def test_threshold_default_number_and_best(tmp_path):
  trained = _fake_trained(tmp_path)
  same, record = threshold.with_null_threshold(trained, None)
  assert same is trained
  assert record == {"value": 0.5, "source": "run_config", "run_value": 0.5}
  changed, record = threshold.with_null_threshold(trained, -2)
  assert changed.run_config.decode.null_score_diff_threshold == -2.0
  assert changed.run_config.train == trained.run_config.train
  assert record == {"value": -2.0, "source": "export argument",
                    "run_value": 0.5}
  # "best": the end-of-training evaluation of the same checkpoint (its path
  # as recorded may be relative), moved midway to the next null odds.
  _write_eval(tmp_path / "eval", checkpoint="runs/a/checkpoints/ckpt-8",
              best=-1.0, odds=[-3.0, -1.0, 0.5, -0.5, 2.0])
  best, record = threshold.with_null_threshold(trained, "best")
  assert best.run_config.decode.null_score_diff_threshold == -0.75
  assert record["source"] == (f"best_f1_thresh -1 of {tmp_path}/eval/"
                              f"eval_results.json, moved midway to the next "
                              f"null odds")
  # tfqa_eval's output for that checkpoint comes first; with no larger odds,
  # best_f1_thresh + 1.
  _write_eval(tmp_path / "eval" / "ckpt-8", checkpoint="ckpt-8", best=2.0,
              odds=[2.0, 1.0])
  assert threshold.best_null_threshold(str(tmp_path), trained.checkpoint)[0] == 3.0
  # Answering nothing scored best: the search's 0.0 is no question's odds.
  _write_eval(tmp_path / "eval" / "ckpt-8", checkpoint="ckpt-8", best=0.0,
              odds=[2.0, -1.5])
  value, source = threshold.best_null_threshold(str(tmp_path), trained.checkpoint)
  assert value == -2.5 and "answering no question" in source


@pytest.mark.parametrize("value,match", [
    ("abc", r"Received: no_answer_threshold='abc'. Expected a finite "
            r"number or 'best'"),
    (float("nan"), r"Received: no_answer_threshold=nan"),
    (True, r"Received: no_answer_threshold=True"),
])
def test_threshold_invalid_values_are_refused(tmp_path, value, match):
  with pytest.raises(ValueError, match=match):
    threshold.with_null_threshold(_fake_trained(tmp_path), value)
  with pytest.raises(ValueError, match=match):  # before anything is loaded
    export.export_model(model_dir=str(tmp_path / "none"),
                        export_dir=str(tmp_path / "export"),
                        no_answer_threshold=value)


def test_threshold_for_a_v11_run_is_refused(tmp_path):
  trained = _fake_trained(tmp_path, version_2=False)
  assert threshold.with_null_threshold(trained, None) == (trained, None)
  with pytest.raises(ValueError, match=r"no_answer_threshold=-1.0 "
                                       r"applies to SQuAD v2.0 models.*"
                                       r"v1.1-style") as raised:
    threshold.with_null_threshold(trained, -1.0)
  # tfqa_export names the argument by its flag.
  assert raised.value.worded(
      {"no_answer_threshold": "--null_score_diff_threshold"}).startswith(
          "--null_score_diff_threshold=-1.0 applies to SQuAD v2.0 models")


def test_best_threshold_needs_an_evaluation_of_the_checkpoint(tmp_path):
  trained = _fake_trained(tmp_path)
  with pytest.raises(ValueError, match=r"'best' needs an evaluation of "
                                       r"checkpoint ckpt-8 .*found none.*"
                                       r"Run `tfqa_eval --model_dir="):
    threshold.with_null_threshold(trained, "best")
  _write_eval(tmp_path / "eval", checkpoint="ckpt-4", best=-1.0, odds=[0.0])
  with pytest.raises(ValueError, match=r"eval_results.json evaluated ckpt-4"):
    threshold.with_null_threshold(trained, "best")
  _write_eval(tmp_path / "eval", checkpoint="ckpt-8", best=None, odds=[0.0])
  with pytest.raises(ValueError, match=r"no usable best_f1_thresh \(found "
                                       r"None\)"):
    threshold.with_null_threshold(trained, "best")
