"""Tests for tfqa.answers: n-best span decoding over windows and v2.0 null handling."""

import numpy as np
import pytest

from tfqa import answers
from tfqa import config
from tfqa import data
from tfqa import features as features_lib

# Context "the cat sat here" with one char span per token; windows are built
# by hand so every logit position is known.
CONTEXT = "the cat sat here"
SPANS = np.array([[0, 3], [4, 7], [8, 11], [12, 16]], np.int32)
EXAMPLE = data.SquadExample(id="q1", title="", question="who?", context=CONTEXT,
                            answer_texts=("cat",), answer_starts=(4,))


def _features(windows):
  """windows: list of (context_offset, first_token, last_token_exclusive)."""
  return features_lib.Features(
      input_ids=tuple(np.zeros(off + (b - a) + 1, np.int32)
                      for off, a, b in windows),
      token_type_ids=tuple(np.zeros(off + (b - a) + 1, np.int32)
                           for off, a, b in windows),
      start_positions=np.zeros(len(windows), np.int32),
      end_positions=np.zeros(len(windows), np.int32),
      example_index=np.zeros(len(windows), np.int32),
      context_offset=np.array([off for off, _, _ in windows], np.int32),
      token_char_spans=tuple(SPANS[a:b] for _, a, b in windows))


def _logits(length, values):
  out = np.full(length, -10.0, np.float32)
  for position, value in values.items():
    out[position] = value
  return out


def test_best_spans_respect_context_order_and_length():
  starts = _logits(8, {0: 9.0, 2: 1.0, 3: 5.0, 5: 2.0})
  ends = _logits(8, {0: 9.0, 2: 3.0, 4: 4.0, 7: 8.0})
  spans = answers.best_spans_in_window(
      starts, ends, context_offset=2, num_context_tokens=4, n_best_size=3,
      max_answer_length=2)
  # Context tokens are 2..5, so CLS (0) and position 7 are never used. Top-3
  # starts: 3, 5, 2; top-3 ends: 4, 2 and one -10 filler (3 or 5).
  as_pairs = sorted((s, e) for s, e, _, _ in spans)
  assert (3, 4) in as_pairs and (2, 2) in as_pairs
  assert all(2 <= s <= e <= 5 and e - s < 2 for s, e in as_pairs)


def test_decode_picks_highest_scoring_span_across_windows():
  feats = _features([(2, 0, 3), (2, 1, 4)])
  # Window 0 tokens: the cat sat; window 1: cat sat here (offset 2).
  start = [_logits(6, {2: 1.0, 3: 2.0}), _logits(6, {2: 0.5, 4: 6.0})]
  end = [_logits(6, {3: 2.0}), _logits(6, {4: 1.0, 2: 0.0})]
  prediction = answers.decode_example(EXAMPLE, [0, 1], feats, start, end,
                                      config.DecodeConfig(n_best_size=5))
  assert prediction.text == "here"  # window 1, token 4 -> context token 3
  assert (prediction.start_char, prediction.end_char) == (12, 16)
  assert prediction.score == pytest.approx(7.0)
  texts = [c.text for c in prediction.nbest]
  assert texts[0] == "here" and len(texts) == len(set(texts))
  assert sum(c.probability for c in prediction.nbest) == pytest.approx(1.0)


def test_v2_null_wins_when_null_score_beats_best_span_by_threshold():
  feats = _features([(2, 0, 4)])
  start = [_logits(7, {0: 3.0, 3: 2.0})]
  end = [_logits(7, {0: 3.0, 3: 2.0})]
  # null = 6, best span "cat" = 4, null_odds = 2.
  v2 = config.DecodeConfig(version_2_with_negative=True)
  prediction = answers.decode_example(EXAMPLE, [0], feats, start, end, v2)
  assert prediction.text == "" and prediction.start_char == -1
  assert prediction.null_odds == pytest.approx(2.0)
  lenient = config.DecodeConfig(version_2_with_negative=True,
                                null_score_diff_threshold=2.5)
  prediction = answers.decode_example(EXAMPLE, [0], feats, start, end, lenient)
  assert prediction.text == "cat"
  assert prediction.null_odds == pytest.approx(2.0)


def test_v2_null_score_is_the_minimum_over_windows():
  feats = _features([(2, 0, 2), (2, 2, 4)])
  start = [_logits(5, {0: 5.0, 2: 1.0}), _logits(5, {0: 1.0})]
  end = [_logits(5, {0: 5.0, 2: 1.0}), _logits(5, {0: 1.0})]
  v2 = config.DecodeConfig(version_2_with_negative=True)
  prediction = answers.decode_example(EXAMPLE, [0, 1], feats, start, end, v2)
  # null = min(10, 2) = 2; best span "the" = 2 -> odds 0 -> not > 0: answer.
  assert prediction.null_odds == pytest.approx(0.0)
  assert prediction.text == "the"


def test_v1_ignores_cls_and_decode_predictions_groups_windows():
  other = data.SquadExample(id="q2", title="", question="?", context=CONTEXT,
                            answer_texts=("sat",), answer_starts=(8,))
  feats = features_lib.Features(
      input_ids=(np.zeros(7, np.int32),) * 2,
      token_type_ids=(np.zeros(7, np.int32),) * 2,
      start_positions=np.zeros(2, np.int32), end_positions=np.zeros(2, np.int32),
      example_index=np.array([1, 0], np.int32),
      context_offset=np.array([2, 2], np.int32),
      token_char_spans=(SPANS, SPANS))
  start = [_logits(7, {0: 50.0, 4: 3.0}), _logits(7, {3: 3.0})]
  end = [_logits(7, {0: 50.0, 4: 3.0}), _logits(7, {3: 3.0})]
  predictions = answers.decode_predictions(
      [EXAMPLE, other], feats, start, end, config.DecodeConfig())
  assert predictions.texts() == {"q1": "cat", "q2": "sat"}
  assert predictions.null_odds() == {"q1": 0.0, "q2": 0.0}
  assert predictions.nbest()["q1"][0]["text"] == "cat"


def test_decode_predictions_rejects_wrong_logit_count():
  feats = _features([(2, 0, 4)])
  with pytest.raises(ValueError, match="logits for 2 start / 2 end windows"):
    answers.decode_predictions([EXAMPLE], feats, [np.zeros(7)] * 2,
                               [np.zeros(7)] * 2, config.DecodeConfig())
