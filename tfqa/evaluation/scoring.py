"""Scoring a predictions file against a SQuAD file, as the official scripts do (tfqa_score)."""

from __future__ import annotations

from tfqa import errors
from tfqa import preflight
from tfqa.data import squad as squad_lib
from tfqa.evaluation import metrics as metrics_lib
from tfqa.layout import json_files


def read_predictions(path: str) -> dict[str, str]:
  """Reads `predictions.json` (question id -> answer text).

  Raises:
    ValueError: naming the file, the id and the value that is wrong.
  """
  return _read_id_map(path, what="the predictions file",
                      value_name="an answer string",
                      is_valid=lambda value: isinstance(value, str))


def read_na_probs(path: str) -> dict[str, float]:
  """Reads a no-answer probability (or null odds) file: id -> number.

  Raises:
    ValueError: naming the file, the id and the value that is wrong.
  """
  values = _read_id_map(
      path, what="the no-answer probability file", value_name="a number",
      is_valid=lambda value: isinstance(value, (int, float)) and
      not isinstance(value, bool))
  return {qid: float(value) for qid, value in values.items()}


def _read_id_map(path, *, what, value_name, is_valid):
  obj = json_files.read_json(path, what=what)
  if not isinstance(obj, dict):
    raise ValueError(f"{path}: expected a JSON object of question id -> "
                     f"{value_name}, got {type(obj).__name__}.")
  for qid, value in obj.items():
    if not is_valid(value):
      raise ValueError(f"{path}: [{qid!r}]: expected {value_name}, got "
                       f"{value!r:.80}.")
  return obj


def score_files(data_file: str, predictions_file: str, *,
                na_prob_file: str | None = None,
                na_prob_thresh: float = 1.0,
                checked: preflight.Checked | None = None) -> dict:
  """Official SQuAD metrics of a predictions file.

  The v2.0 metrics are used when the data has unanswerable questions or a
  no-answer probability file is given; otherwise v1.1's.

  Returns:
    The official keys (v1.1: exact_match, f1; v2.0: exact, f1, total,
    HasAns_*, NoAns_*, and best_* with na_prob_file), values in percent, plus
    "missing": gold ids without a prediction (scored as wrong) and
    "unknown_ids": prediction ids not in the data (ignored).

  `checked`: what preflight.check_score returned for these files (they are
  not checked again); None: checked here.

  Raises:
    ValueError: a file of the wrong kind (see preflight.check_score), not
      SQuAD or predictions JSON, or the two given in the wrong order.
  """
  preflight.unless_checked(checked, preflight.check_score,
                           data_file=data_file,
                           predictions_file=predictions_file,
                           na_prob_file=na_prob_file)
  try:
    squad = squad_lib.load_squad_json(data_file)
  except squad_lib.SquadFormatError:
    _refuse_swapped(data_file, predictions_file)
    raise
  gold = squad_lib.gold_answers(squad.examples)
  predictions = read_predictions(predictions_file)
  result = metrics_lib.squad_metrics(
      gold, predictions, version_2=bool(squad.has_impossible or na_prob_file),
      na_probs=read_na_probs(na_prob_file) if na_prob_file else None,
      na_prob_thresh=na_prob_thresh)
  result["unknown_ids"] = len(set(predictions) - set(gold))
  return result


def _refuse_swapped(data_file, predictions_file):
  """Raises a ValueError when the two files look given in the wrong order."""
  try:
    predictions = json_files.read_json(predictions_file,
                                     what="the predictions file")
  except ValueError:
    return
  if isinstance(predictions, dict) and "data" in predictions:
    raise errors.ArgumentNamingError(
        "{data_file}=" + errors.literal(data_file) + " is not a SQuAD file, "
        "but {predictions_file}=" + errors.literal(predictions_file) +
        " looks like one (it has 'data'): the arguments are swapped? "
        "Expected: tfqa_score DATA_FILE PREDICTIONS_FILE, e.g. tfqa_score "
        "dev.json predictions.json.", ["data_file", "predictions_file"])
