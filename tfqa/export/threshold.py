"""The no-answer threshold an export applies: the run's, a number, or the best one its evaluation measured."""

from __future__ import annotations

import dataclasses
import math
import os

from tfqa import config as config_lib
from tfqa import errors
from tfqa.inference import run_evaluation
from tfqa.inference import trained_model
from tfqa.layout import fs
from tfqa.layout import json_files
from tfqa.layout import rundir


def with_null_threshold(trained: trained_model.TrainedModel,
                        value: float | str | None
                        ) -> tuple[trained_model.TrainedModel, dict | None]:
  """The model with the no-answer threshold to export, and its record.

  Args:
    trained: the loaded run.
    value: None (the run's threshold), a number, or "best" (see
      best_null_threshold).

  Returns:
    (trained with run_config.decode.null_score_diff_threshold set, the
    manifest's record {"value", "source", "run_value"}); the record is None
    for a v1.1 run, which never predicts no answer.

  Raises:
    ValueError: a value that is neither a finite number nor "best"; a
      threshold for a v1.1 run; "best" without an evaluation.
  """
  # Validated as ExportConfig validates it (one message).
  config_lib.ExportConfig(no_answer_threshold=value)
  decode = trained.run_config.decode
  if value is None:
    if not decode.version_2_with_negative:
      return trained, None
    return trained, {"value": decode.null_score_diff_threshold,
                     "source": "run_config",
                     "run_value": decode.null_score_diff_threshold}
  if not decode.version_2_with_negative:
    raise errors.ArgumentNamingError(
        f"{errors.assignment('no_answer_threshold', value)} applies to SQuAD "
        f"v2.0 models, but the run in {errors.literal(trained.model_dir)} is "
        f"v1.1-style (version_2_with_negative is false): it always answers. "
        f"Drop the threshold.", ["no_answer_threshold"])
  if value == "best":
    value, source = best_null_threshold(trained.model_dir,
                                        trained.checkpoint)
  else:
    value, source = float(value), "export argument"
  new_decode = dataclasses.replace(decode, null_score_diff_threshold=value)
  trained = dataclasses.replace(trained, run_config=dataclasses.replace(
      trained.run_config, decode=new_decode))
  return trained, {"value": value, "source": source,
                   "run_value": decode.null_score_diff_threshold}


def best_null_threshold(model_dir: str, checkpoint: str) -> tuple[float, str]:
  """The measured best v2.0 threshold of a checkpoint, and where it is from.

  Reads `best_f1_thresh` from MODEL_DIR/eval/<checkpoint>/eval_results.json
  (written by tfqa_eval), else from MODEL_DIR/eval/eval_results.json when it
  evaluated the same checkpoint (the end of tfqa_train). The official v2.0
  metric takes it from the eval questions' null odds (null_odds.json, beside
  it): questions whose odds are at most it are answered, the others not.
  Exactly at one question's odds, float rounding in the SavedModel could
  flip that question, so the threshold returned lies midway between it and
  the next larger odds (best_f1_thresh + 1 when there are none): the same
  answers on the eval questions, ties of odds aside. When answering nothing
  scored best (best_f1_thresh is then the search's 0.0, no question's
  odds), it is 1 below the smallest odds. The measure is made with the
  predictions of the run's threshold, so it ranks thresholds at or below
  that one.

  Raises:
    ValueError: no evaluation of this checkpoint, or one without
      best_f1_thresh or null_odds.json.
  """
  name = os.path.basename(checkpoint)
  eval_dir = os.path.join(model_dir, rundir.EVAL_SUBDIR)
  seen = []
  for out_dir in (os.path.join(eval_dir, name), eval_dir):
    path = os.path.join(out_dir, run_evaluation.RESULTS_FILE)
    if not fs.isfile(path):
      continue
    results = json_files.read_json(path, what="the evaluation results")
    evaluated = os.path.basename(str(results.get("checkpoint", "")))
    if evaluated != name:
      seen.append(f"{path} evaluated {evaluated or 'an unnamed checkpoint'}")
      continue
    best = results.get("best_f1_thresh")
    odds_path = os.path.join(out_dir, run_evaluation.NULL_ODDS_FILE)
    if not _is_finite_number(best) or not fs.isfile(odds_path):
      raise ValueError(f"{path} has no usable best_f1_thresh (found "
                       f"{best!r}) or no {run_evaluation.NULL_ODDS_FILE} beside "
                       f"it; re-run tfqa_eval, or pass a number.")
    odds = [x for x in json_files.read_json(
        odds_path, what="the null odds").values() if _is_finite_number(x)]
    if odds and best not in odds:
      # The search's starting point: answering nothing scored best.
      return float(min(odds) - 1.0), (
          f"best_f1_thresh of {path}: answering no question of that "
          f"evaluation scored best, so below all its null odds")
    above = [x for x in odds if x > best]
    value = (best + min(above)) / 2 if above else best + 1.0
    return float(value), (f"best_f1_thresh {best:.6g} of {path}, moved "
                          f"midway to the next null odds")
  found = "; ".join(seen) if seen else "found none"
  raise errors.ArgumentNamingError(
      errors.assignment("no_answer_threshold", "best") + errors.literal(
          f" needs an evaluation of checkpoint {name} in {eval_dir} "
          f"({found}). Run `tfqa_eval --model_dir={model_dir} "
          f"--checkpoint={checkpoint}` first, or pass a number."),
      ["no_answer_threshold"])


def _is_finite_number(value) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool) and
          math.isfinite(value))
