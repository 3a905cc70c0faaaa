"""Official SQuAD v1.1 and v2.0 evaluation metrics as pure functions."""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
import math
import numbers
import re
import string

from tfqa import errors

# Whole-word articles; `\b` keeps "the" inside "there" or "other" untouched.
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
  """Normalizes an answer the way both official SQuAD scripts do.

  The steps run in the official order: lower-case, drop ASCII punctuation
  (`string.punctuation`), replace the whole words "a", "an" and "the" with a
  space, then collapse runs of whitespace into single spaces and strip.

  Args:
    text: The answer text.

  Returns:
    The normalized text.
  """
  text = text.lower()
  text = "".join(ch for ch in text if ch not in _PUNCTUATION)
  text = _ARTICLES.sub(" ", text)
  return " ".join(text.split())


def exact_match_score(prediction: str, gold: str) -> int:
  """Returns 1 if the normalized texts are equal, else 0 (v2.0 compute_exact).

  Args:
    prediction: The predicted answer text.
    gold: One gold answer text.

  Returns:
    1 or 0.
  """
  return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
  """Returns the token-level F1 of two answers (v2.0 compute_f1).

  When either text normalizes to no tokens (a no-answer), the score is 1.0 if
  both do and 0.0 otherwise.

  Args:
    prediction: The predicted answer text.
    gold: One gold answer text.

  Returns:
    The F1 score in [0, 1].
  """
  pred_tokens = normalize_answer(prediction).split()
  gold_tokens = normalize_answer(gold).split()
  if not pred_tokens or not gold_tokens:
    return float(pred_tokens == gold_tokens)
  return _token_f1(pred_tokens, gold_tokens)


def has_answer_ids(gold_answers: Mapping[str, Sequence[str]]) -> list[str]:
  """Returns the ids with at least one gold answer, in mapping order.

  As in the official v2.0 script, a question counts as answerable when its raw
  gold list is non-empty, even if every text in it normalizes to "".

  Args:
    gold_answers: Question id -> gold answer texts.

  Returns:
    The ids of answerable questions.
  """
  return [qid for qid, answers in gold_answers.items() if answers]


def no_answer_ids(gold_answers: Mapping[str, Sequence[str]]) -> list[str]:
  """Returns the ids whose gold answer list is empty, in mapping order.

  Args:
    gold_answers: Question id -> gold answer texts.

  Returns:
    The ids of unanswerable questions.
  """
  return [qid for qid, answers in gold_answers.items() if not answers]


def squad_v1_metrics(gold_answers: Mapping[str, Sequence[str]],
                     predictions: Mapping[str, str]) -> dict:
  """Scores predictions as `evaluate-v1.1.py` does.

  Each question scores the maximum over its gold answers. F1 follows the v1.1
  script: no special case for empty token lists, so zero common tokens give 0
  (a prediction "" against the gold "the" has EM 1 but F1 0). A question id
  missing from `predictions` scores 0 and still counts in `total`, as in the
  official script; ids only in `predictions` are ignored.

  Args:
    gold_answers: Question id -> non-empty list of gold answer texts.
    predictions: Question id -> predicted answer text.

  Returns:
    A dict with "exact_match" and "f1" in percent (100 * mean over all gold
    ids), "total" (number of gold ids) and "missing" (gold ids without a
    prediction).

  Raises:
    ValueError: If `gold_answers` is empty, not a mapping, holds a value that is
      not a list of strings or an empty list; or if `predictions` is not a
      mapping or holds a value that is not a str.
  """
  _check_gold_answers(gold_answers, allow_unanswerable=False)
  _check_predictions(predictions)
  exact = f1 = 0
  for qid, answers in gold_answers.items():
    if qid not in predictions:
      continue
    prediction = predictions[qid]
    exact += max(exact_match_score(prediction, gold) for gold in answers)
    f1 += max(_f1_score_v1(prediction, gold) for gold in answers)
  total = len(gold_answers)
  return {
      "exact_match": 100.0 * exact / total,
      "f1": 100.0 * f1 / total,
      "total": total,
      "missing": _count_missing(gold_answers, predictions),
  }


def squad_v2_metrics(gold_answers: Mapping[str, Sequence[str]],
                     predictions: Mapping[str, str],
                     *,
                     na_probs: Mapping[str, float] | None = None,
                     na_prob_thresh: float = 1.0) -> dict:
  """Scores predictions as `evaluate-v2.0.py` does, but counts missing ids.

  Gold texts that normalize to "" are dropped; a question left with none has
  the single gold answer "" (the official rule). A prediction is treated as
  null when its no-answer probability is strictly greater than
  `na_prob_thresh`; a null prediction then scores 1 on unanswerable questions
  and 0 on answerable ones. Without `na_probs` every prediction has
  probability 0.0, as in the official script.

  Deliberate deviation from the official script: a question id missing from
  `predictions` is scored as wrong, 0 for both EM and F1 even when the question
  is unanswerable (no "" prediction is assumed and no threshold applies to it),
  and it counts in every total. The official script drops such ids from
  `total` (and fails on the HasAns/NoAns breakdown). The best-threshold search
  likewise starts from the number of unanswerable questions that have a
  prediction and divides by `total`. With no missing ids, every number equals
  the official one.

  Args:
    gold_answers: Question id -> gold answer texts; an empty list marks an
      unanswerable question.
    predictions: Question id -> predicted answer text ("" for no answer).
    na_probs: Optional question id -> no-answer probability; must cover every
      gold id that has a prediction. When given, the best-threshold keys are
      added.
    na_prob_thresh: Predictions whose no-answer probability is greater than
      this are treated as null.

  Returns:
    A `collections.OrderedDict` with the official keys in the official order:
    "exact", "f1", "total", then "HasAns_exact", "HasAns_f1", "HasAns_total"
    if some question is answerable, "NoAns_exact", "NoAns_f1", "NoAns_total"
    if some question is unanswerable, then "best_exact", "best_exact_thresh",
    "best_f1", "best_f1_thresh" if `na_probs` is given; and last "missing",
    the number of gold ids without a prediction. Scores are in percent.

  Raises:
    ValueError: If `gold_answers` is empty, not a mapping or holds a value that
      is not a list of strings; if `predictions` is not a mapping or holds a
      value that is not a str; if `na_probs` is not a mapping, holds a value
      that is not a finite number or lacks a predicted gold id; or if
      `na_prob_thresh` is not a finite number.
  """
  _check_gold_answers(gold_answers, allow_unanswerable=True)
  _check_predictions(predictions)
  _check_na_prob_thresh(na_prob_thresh)
  if na_probs is not None:
    _check_na_probs(na_probs, gold_answers, predictions)
  applied_probs = ({qid: 0.0 for qid in predictions}
                   if na_probs is None else na_probs)
  has_answer = {qid: bool(answers) for qid, answers in gold_answers.items()}
  exact_raw, f1_raw = _v2_raw_scores(gold_answers, predictions)
  exact = _apply_no_answer_threshold(exact_raw, applied_probs, has_answer,
                                     na_prob_thresh)
  f1 = _apply_no_answer_threshold(f1_raw, applied_probs, has_answer,
                                  na_prob_thresh)
  result = _eval_dict(exact, f1, list(gold_answers))
  for prefix, qids in (("HasAns", has_answer_ids(gold_answers)),
                       ("NoAns", no_answer_ids(gold_answers))):
    if qids:
      for key, value in _eval_dict(exact, f1, qids).items():
        result[f"{prefix}_{key}"] = value
  if na_probs is not None:
    total = len(gold_answers)
    for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
      best, thresh = _find_best_thresh(predictions, raw, na_probs, has_answer,
                                       total)
      result[f"best_{name}"] = best
      result[f"best_{name}_thresh"] = thresh
  result["missing"] = _count_missing(gold_answers, predictions)
  return result


def squad_metrics(gold_answers: Mapping[str, Sequence[str]],
                  predictions: Mapping[str, str], *, version_2: bool,
                  na_probs: Mapping[str, float] | None = None,
                  na_prob_thresh: float = 1.0) -> dict:
  """The official metrics of a SQuAD version: v2.0's when `version_2`, else v1.1's.

  `na_probs` and `na_prob_thresh` apply to v2.0 only (see squad_v2_metrics).
  """
  if version_2:
    return dict(squad_v2_metrics(gold_answers, predictions,
                                 na_probs=na_probs,
                                 na_prob_thresh=na_prob_thresh))
  return squad_v1_metrics(gold_answers, predictions)


def headline(metrics: Mapping[str, float]) -> str:
  """One readable line of squad_metrics' results (the file keeps them all).

  v1.1: "EM 30.21, F1 42.31 on 96 questions"; v2.0 adds the answerable and
  unanswerable F1 and the best no-answer threshold's F1.
  """
  exact = metrics.get("exact_match", metrics.get("exact"))
  line = (f"EM {exact:.2f}, F1 {metrics['f1']:.2f} on {metrics['total']} "
          f"questions")
  if "HasAns_f1" in metrics:
    line += (f" (answerable {metrics['HasAns_total']}: F1 "
             f"{metrics['HasAns_f1']:.2f}")
    if "NoAns_f1" in metrics:
      line += (f"; unanswerable {metrics['NoAns_total']}: F1 "
               f"{metrics['NoAns_f1']:.2f}")
    line += ")"
  if "best_f1" in metrics:
    line += (f"; best F1 {metrics['best_f1']:.2f} at no-answer threshold "
             f"{metrics['best_f1_thresh']:.4g}")
  if metrics.get("missing"):
    line += f"; {metrics['missing']} questions without a prediction"
  return line


def _token_f1(pred_tokens, gold_tokens):
  """Returns the F1 of two token lists; 0.0 when they share no token."""
  common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
  num_same = sum(common.values())
  if num_same == 0:
    return 0.0
  precision = num_same / len(pred_tokens)
  recall = num_same / len(gold_tokens)
  return (2 * precision * recall) / (precision + recall)


def _f1_score_v1(prediction, gold):
  """Returns the F1 of `evaluate-v1.1.py`, which has no empty-list case."""
  return _token_f1(normalize_answer(prediction).split(),
                   normalize_answer(gold).split())


def _v2_gold_texts(answers):
  """Returns the gold texts the v2.0 script scores against."""
  return [text for text in answers if normalize_answer(text)] or [""]


def _v2_raw_scores(gold_answers, predictions):
  """Returns EM and F1 dicts over the gold ids that have a prediction."""
  exact, f1 = {}, {}
  for qid, answers in gold_answers.items():
    if qid not in predictions:
      continue
    golds = _v2_gold_texts(answers)
    exact[qid] = max(exact_match_score(predictions[qid], g) for g in golds)
    f1[qid] = max(f1_score(predictions[qid], g) for g in golds)
  return exact, f1


def _apply_no_answer_threshold(scores, na_probs, has_answer, na_prob_thresh):
  """Replaces the score of each prediction deemed null by the null score."""
  return {
      qid: float(not has_answer[qid])
      if na_probs[qid] > na_prob_thresh else score
      for qid, score in scores.items()
  }


def _eval_dict(exact, f1, qids):
  """Returns exact/f1 percentages over `qids` (missing ids score 0), total."""
  total = len(qids)
  return collections.OrderedDict([
      ("exact", 100.0 * sum(exact.get(qid, 0) for qid in qids) / total),
      ("f1", 100.0 * sum(f1.get(qid, 0) for qid in qids) / total),
      ("total", total),
  ])


def _find_best_thresh(predictions, scores, na_probs, has_answer, total):
  """Returns the best score in percent and its threshold (official search).

  The search starts with every prediction null (each unanswerable question
  scores 1), then un-nulls questions one at a time in ascending `na_probs`
  order (a stable sort, so ties keep the mapping order) and records the
  probability whenever the running score strictly improves. Un-nulling an
  unanswerable question costs 1 when its raw prediction string is non-empty,
  even if it normalizes to "", as in the official script.
  """
  score = sum(1 for qid in scores if not has_answer[qid])
  best_score, best_thresh = score, 0.0
  for qid in sorted(na_probs, key=lambda k: na_probs[k]):
    if qid not in scores:
      continue
    if has_answer[qid]:
      score += scores[qid]
    elif predictions[qid]:
      score -= 1
    if score > best_score:
      best_score, best_thresh = score, float(na_probs[qid])
  return 100.0 * best_score / total, best_thresh


def _count_missing(gold_answers, predictions):
  return sum(1 for qid in gold_answers if qid not in predictions)


def _check_gold_answers(gold_answers, *, allow_unanswerable):
  """Raises ValueError unless `gold_answers` maps ids to lists of strings."""
  if not isinstance(gold_answers, Mapping) or not gold_answers:
    raise _invalid("gold_answers", gold_answers,
                   "Expected a non-empty mapping from question id to a list "
                   "of gold answer texts.")
  for qid, answers in gold_answers.items():
    if (isinstance(answers, (str, bytes)) or
        not isinstance(answers, Sequence) or
        not all(isinstance(text, str) for text in answers)):
      raise ValueError(
          f"Invalid gold answers for question id {qid!r}. Received: "
          f"{_describe(answers)}. Expected a list of str; wrap a single "
          f"answer in a list.")
    if not answers and not allow_unanswerable:
      raise ValueError(
          f"Invalid gold answers for question id {qid!r}. Received: an empty "
          f"list. SQuAD v1.1 has no unanswerable questions; give at least one "
          f"gold answer or use `squad_v2_metrics`.")


def _check_predictions(predictions):
  """Raises ValueError unless `predictions` maps ids to strings."""
  if not isinstance(predictions, Mapping):
    raise _invalid("predictions", predictions,
                   "Expected a mapping from question id to the predicted "
                   "answer text.")
  for qid, text in predictions.items():
    if not isinstance(text, str):
      raise ValueError(
          f"Invalid prediction for question id {qid!r}. Received: "
          f"{_describe(text)}. Expected a str; use '' to predict no answer.")


def _check_na_prob_thresh(na_prob_thresh):
  if not _is_finite_number(na_prob_thresh):
    raise _invalid("na_prob_thresh", na_prob_thresh,
                   "Expected a finite number.")


def _check_na_probs(na_probs, gold_answers, predictions):
  """Raises ValueError unless `na_probs` holds finite numbers for all preds."""
  if not isinstance(na_probs, Mapping):
    raise _invalid("na_probs", na_probs,
                   "Expected a mapping from question id to a no-answer "
                   "probability, or None.")
  for qid, prob in na_probs.items():
    if not _is_finite_number(prob):
      raise ValueError(
          f"Invalid no-answer probability for question id {qid!r}. Received: "
          f"{_describe(prob)}. Expected a finite number.")
  for qid in gold_answers:
    if qid in predictions and qid not in na_probs:
      raise ValueError(
          f"Missing no-answer probability for question id {qid!r}, which has "
          f"a prediction. Expected `na_probs` to cover every predicted gold "
          f"id; add it or pass na_probs=None.")


def _is_finite_number(value):
  return (isinstance(value, numbers.Real) and not isinstance(value, bool) and
          math.isfinite(value))


def _describe(value):
  return f"{value!r} of type {type(value).__name__}"


def _invalid(name, value, expected) -> errors.ArgumentNamingError:
  """"Invalid value for argument `name`. Received: value of type T. ..."."""
  return errors.ArgumentNamingError(
      f"Invalid value for {{{name}:head}}. Received: "
      f"{errors.literal(_describe(value))}. {errors.literal(expected)}",
      [name])
