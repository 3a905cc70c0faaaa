"""Scoring a predictions file against a SQuAD file, as the official scripts do (tfqa_score)."""

from __future__ import annotations

from tfqa import data as data_lib
from tfqa import io_utils
from tfqa import metrics as metrics_lib


def read_predictions(path: str) -> dict[str, str]:
  """Reads `predictions.json` (question id -> answer text).

  Raises:
    ValueError: naming the file, the id and the value that is wrong.
  """
  obj = io_utils.read_json(path, what="the predictions file")
  if not isinstance(obj, dict):
    raise ValueError(f"{path}: expected a JSON object of question id -> "
                     f"answer text, got {type(obj).__name__}.")
  for qid, text in obj.items():
    if not isinstance(text, str):
      raise ValueError(f"{path}: [{qid!r}]: expected an answer string, got "
                       f"{text!r:.80}.")
  return obj


def read_na_probs(path: str) -> dict[str, float]:
  """Reads a no-answer probability (or null odds) file: id -> number.

  Raises:
    ValueError: naming the file, the id and the value that is wrong.
  """
  obj = io_utils.read_json(path, what="the no-answer probability file")
  if not isinstance(obj, dict):
    raise ValueError(f"{path}: expected a JSON object of question id -> "
                     f"number, got {type(obj).__name__}.")
  for qid, value in obj.items():
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ValueError(f"{path}: [{qid!r}]: expected a number, got "
                       f"{value!r:.80}.")
  return {qid: float(value) for qid, value in obj.items()}


def score_files(data_file: str, predictions_file: str, *,
                na_prob_file: str | None = None,
                na_prob_thresh: float = 1.0) -> dict:
  """Official SQuAD metrics of a predictions file.

  The v2.0 metrics are used when the data has unanswerable questions or a
  no-answer probability file is given; otherwise v1.1's.

  Returns:
    The official keys (v1.1: exact_match, f1; v2.0: exact, f1, total,
    HasAns_*, NoAns_*, and best_* with na_prob_file), values in percent, plus
    "missing": gold ids without a prediction (scored as wrong) and
    "unknown_ids": prediction ids not in the data (ignored).
  """
  squad = data_lib.load_squad_json(data_file)
  gold = data_lib.gold_answers(squad.examples)
  predictions = read_predictions(predictions_file)
  if squad.has_impossible or na_prob_file:
    na_probs = read_na_probs(na_prob_file) if na_prob_file else None
    result = dict(metrics_lib.squad_v2_metrics(
        gold, predictions, na_probs=na_probs, na_prob_thresh=na_prob_thresh))
  else:
    result = metrics_lib.squad_v1_metrics(gold, predictions)
  result["unknown_ids"] = len(set(predictions) - set(gold))
  return result
