"""Span decoding: per-window start/end logits to answer texts, n-best lists and null odds."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from tfqa import config as config_lib
from tfqa.data import squad as squad_lib
from tfqa.data import windows as windows_lib


@dataclasses.dataclass(frozen=True)
class Candidate:
  """One answer candidate of an example."""

  text: str
  start_char: int  # -1 for the null answer
  end_char: int  # exclusive; -1 for the null answer
  start_logit: float
  end_logit: float
  probability: float = 0.0

  @property
  def score(self) -> float:
    return self.start_logit + self.end_logit


@dataclasses.dataclass(frozen=True)
class ExamplePrediction:
  """The decoded answer of one example."""

  text: str  # "" when the prediction is "no answer"
  start_char: int  # -1 when there is no answer
  end_char: int
  score: float  # start + end logit of the chosen span (null score if null)
  null_odds: float  # null score - best span score; -inf-free, 0.0 if v1.1
  nbest: tuple[Candidate, ...]


@dataclasses.dataclass(frozen=True)
class Predictions:
  """Decoded answers of a set of examples, keyed by example id."""

  by_id: dict[str, ExamplePrediction]

  def texts(self) -> dict[str, str]:
    """id -> answer text (the `predictions.json` content)."""
    return {qid: p.text for qid, p in self.by_id.items()}

  def null_odds(self) -> dict[str, float]:
    """id -> null score minus best span score (`null_odds.json`)."""
    return {qid: p.null_odds for qid, p in self.by_id.items()}

  def nbest(self) -> dict[str, list[dict]]:
    """id -> n-best list (`nbest_predictions.json`)."""
    return {qid: [dataclasses.asdict(c) for c in p.nbest]
            for qid, p in self.by_id.items()}


def best_spans_in_window(start_logits: np.ndarray, end_logits: np.ndarray, *,
                         context_offset: int, num_context_tokens: int,
                         n_best_size: int, max_answer_length: int
                         ) -> list[tuple[int, int, float, float]]:
  """Valid (start, end, start_logit, end_logit) token spans of one window.

  A span is valid when both ends are context tokens, start <= end and it is
  at most `max_answer_length` tokens long. Only the `n_best_size` highest
  start and end logits among context tokens are considered.
  """
  begin, stop = context_offset, context_offset + num_context_tokens
  if num_context_tokens <= 0:
    return []
  starts = _top_indices(start_logits[begin:stop], n_best_size) + begin
  ends = _top_indices(end_logits[begin:stop], n_best_size) + begin
  spans = []
  for s in starts:
    for e in ends:
      if s <= e < s + max_answer_length:
        spans.append((int(s), int(e), float(start_logits[s]),
                      float(end_logits[e])))
  return spans


def _top_indices(values, k):
  k = min(k, len(values))
  top = np.argpartition(-values, k - 1)[:k]
  return top[np.argsort(-values[top], kind="stable")]


def decode_example(example: squad_lib.SquadExample,
                   windows: Sequence[int],
                   features: windows_lib.Features,
                   start_logits: Sequence[np.ndarray],
                   end_logits: Sequence[np.ndarray],
                   decode_config: config_lib.DecodeConfig) -> ExamplePrediction:
  """Decodes one example's answer from the logits of all its windows.

  Args:
    example: the example.
    windows: row indices (into `features` and the logits) of its windows.
    features: the windows (for token to char offsets).
    start_logits: per window row, its unpadded start logits.
    end_logits: per window row, its unpadded end logits.
    decode_config: n-best size, answer length and v2.0 null handling.

  Returns:
    The prediction; for v2.0 the null answer wins when
    null_score - best_span_score > null_score_diff_threshold. The null score
    is the lowest [CLS] start+end score over the windows.
  """
  if decode_config.span_scoring == "pipeline":
    return _decode_like_pipeline(example, windows, features, start_logits,
                                 end_logits, decode_config)
  candidates, null = [], None
  for window in windows:
    starts, ends = start_logits[window], end_logits[window]
    null_here = (float(starts[0]), float(ends[0]))
    if null is None or sum(null_here) < sum(null):
      null = null_here
    spans_chars = features.token_char_spans[window]
    offset = int(features.context_offset[window])
    for s, e, s_logit, e_logit in best_spans_in_window(
        starts, ends, context_offset=offset,
        num_context_tokens=len(spans_chars),
        n_best_size=decode_config.n_best_size,
        max_answer_length=decode_config.max_answer_length):
      char_start = int(spans_chars[s - offset, 0])
      char_end = int(spans_chars[e - offset, 1])
      candidates.append(Candidate(example.context[char_start:char_end],
                                  char_start, char_end, s_logit, e_logit))
  return _choose(candidates, null, decode_config)


def _decode_like_pipeline(example, windows, features, start_logits,
                          end_logits, decode_config):
  """decode_example with span_scoring="pipeline" (see DecodeConfig).

  Each window contributes its best span; a text already seen (ignoring
  case) adds its probability to that candidate, whose offsets stay those of
  its first window. A candidate's start_logit is log p(start) of that first
  window and its end_logit makes start_logit + end_logit the log of the
  summed probability.
  """
  totals, null = {}, None
  for window in windows:
    spans_chars = features.token_char_spans[window]
    offset = int(features.context_offset[window])
    starts = window_log_softmax(start_logits[window], context_offset=offset,
                                num_context_tokens=len(spans_chars))
    ends = window_log_softmax(end_logits[window], context_offset=offset,
                              num_context_tokens=len(spans_chars))
    null_here = (float(starts[0]), float(ends[0]))
    if null is None or sum(null_here) < sum(null):
      null = null_here
    best = best_span(starts, ends, context_offset=offset,
                     num_context_tokens=len(spans_chars),
                     max_answer_length=decode_config.max_answer_length)
    if best is None:
      continue
    s, e = best
    char_start = int(spans_chars[s - offset, 0])
    char_end = int(spans_chars[e - offset, 1])
    text = example.context[char_start:char_end]
    score = float(starts[s] + ends[e])
    key = text.lower()
    if key in totals:
      first, total = totals[key]
      totals[key] = (first, float(np.logaddexp(total, score)))
    else:
      totals[key] = (Candidate(text, char_start, char_end, float(starts[s]),
                               float(ends[e])), score)
  candidates = [dataclasses.replace(c, end_logit=total - c.start_logit)
                for c, total in totals.values()]
  return _choose(candidates, null, decode_config)


def best_span(start_scores: np.ndarray, end_scores: np.ndarray, *,
              context_offset: int, num_context_tokens: int,
              max_answer_length: int) -> tuple[int, int] | None:
  """The (start, end) context span with the highest start + end score.

  Every span of at most `max_answer_length` tokens is considered; ties go to
  the first in (start, end) order. None when the window has no context.
  """
  if num_context_tokens <= 0:
    return None
  begin, stop = context_offset, context_offset + num_context_tokens
  starts = np.asarray(start_scores[begin:stop], np.float64)
  ends = np.asarray(end_scores[begin:stop], np.float64)
  n = len(starts)
  # scores[s, d]: span from s to s + d.
  scores = np.full((n, max_answer_length), -np.inf)
  for d in range(min(max_answer_length, n)):
    scores[:n - d, d] = starts[:n - d] + ends[d:]
  s, d = np.unravel_index(int(np.argmax(scores)), scores.shape)
  return begin + int(s), begin + int(s) + int(d)


def window_log_softmax(logits: np.ndarray, *, context_offset: int,
                       num_context_tokens: int) -> np.ndarray:
  """float64 log-softmax of one window's logits over [CLS] and its context.

  Other positions (question, [SEP], padding) are left out of the sum and
  hold -inf. This is the transformers pipeline's per-window probability.
  """
  allowed = np.zeros(len(logits), bool)
  allowed[0] = True
  allowed[context_offset:context_offset + num_context_tokens] = True
  values = np.where(allowed, np.asarray(logits, np.float64), -np.inf)
  top = values.max()
  return values - (top + np.log(np.exp(values - top).sum()))


def _choose(candidates, null, decode_config):
  nbest = _dedupe_by_text(sorted(candidates, key=lambda c: -c.score))
  nbest = nbest[:decode_config.n_best_size]
  null_candidate = None
  if decode_config.version_2_with_negative and null is not None:
    null_candidate = Candidate("", -1, -1, null[0], null[1])
  pool = nbest + ([null_candidate] if null_candidate else [])
  pool = _with_probabilities(sorted(pool, key=lambda c: -c.score))
  best_span = next((c for c in pool if c.start_char >= 0), None)
  if null_candidate is None:
    chosen = best_span or Candidate("", -1, -1, 0.0, 0.0)
    return ExamplePrediction(chosen.text, chosen.start_char, chosen.end_char,
                             chosen.score, 0.0, tuple(pool))
  best_score = best_span.score if best_span else float("-inf")
  null_odds = null_candidate.score - best_score
  if best_span is None or null_odds > decode_config.null_score_diff_threshold:
    # A finite odds value keeps null_odds.json valid JSON.
    odds = null_odds if best_span else float(np.finfo(np.float32).max)
    return ExamplePrediction("", -1, -1, null_candidate.score, odds,
                             tuple(pool))
  return ExamplePrediction(best_span.text, best_span.start_char,
                           best_span.end_char, best_span.score, null_odds,
                           tuple(pool))


def _dedupe_by_text(candidates):
  seen, kept = set(), []
  for candidate in candidates:
    if candidate.text not in seen:
      seen.add(candidate.text)
      kept.append(candidate)
  return kept


def _with_probabilities(candidates):
  if not candidates:
    return []
  scores = np.array([c.score for c in candidates], np.float64)
  exp = np.exp(scores - scores.max())
  probs = exp / exp.sum()
  return [dataclasses.replace(c, probability=float(p))
          for c, p in zip(candidates, probs)]


def decode_predictions(examples: Sequence[squad_lib.SquadExample],
                       features: windows_lib.Features,
                       start_logits: Sequence[np.ndarray],
                       end_logits: Sequence[np.ndarray],
                       decode_config: config_lib.DecodeConfig) -> Predictions:
  """Decodes every example from the unpadded logits of every window row."""
  if len(start_logits) != len(features) or len(end_logits) != len(features):
    raise ValueError(
        f"Got logits for {len(start_logits)} start / {len(end_logits)} end "
        f"windows, expected one per window ({len(features)}).")
  windows_of = [[] for _ in examples]
  for window, example_index in enumerate(features.example_index):
    windows_of[example_index].append(window)
  return Predictions({
      example.id: decode_example(example, windows_of[i], features,
                                 start_logits, end_logits, decode_config)
      for i, example in enumerate(examples)
  })
