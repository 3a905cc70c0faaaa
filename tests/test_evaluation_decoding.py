"""Tests for tfqa.evaluation.decoding: n-best span decoding over windows and v2.0 null handling."""

import dataclasses

import numpy as np
import pytest

from tfqa import config
from tfqa.data import squad
from tfqa.data import windows as windows_lib
from tfqa.evaluation import decoding

# Context "the cat sat here" with one char span per token; windows are built
# by hand so every logit position is known.
CONTEXT = "the cat sat here"
SPANS = np.array([[0, 3], [4, 7], [8, 11], [12, 16]], np.int32)
EXAMPLE = squad.SquadExample(id="q1", title="", question="who?", context=CONTEXT,
                            answer_texts=("cat",), answer_starts=(4,))


def _features(windows):
  """windows: list of (context_offset, first_token, last_token_exclusive)."""
  return windows_lib.Features(
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
  spans = decoding.best_spans_in_window(
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
  prediction = decoding.decode_example(EXAMPLE, [0, 1], feats, start, end,
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
  prediction = decoding.decode_example(EXAMPLE, [0], feats, start, end, v2)
  assert prediction.text == "" and prediction.start_char == -1
  assert prediction.null_odds == pytest.approx(2.0)
  lenient = config.DecodeConfig(version_2_with_negative=True,
                                null_score_diff_threshold=2.5)
  prediction = decoding.decode_example(EXAMPLE, [0], feats, start, end, lenient)
  assert prediction.text == "cat"
  assert prediction.null_odds == pytest.approx(2.0)


def test_v2_null_score_is_the_minimum_over_windows():
  feats = _features([(2, 0, 2), (2, 2, 4)])
  start = [_logits(5, {0: 5.0, 2: 1.0}), _logits(5, {0: 1.0})]
  end = [_logits(5, {0: 5.0, 2: 1.0}), _logits(5, {0: 1.0})]
  v2 = config.DecodeConfig(version_2_with_negative=True)
  prediction = decoding.decode_example(EXAMPLE, [0, 1], feats, start, end, v2)
  # null = min(10, 2) = 2; best span "the" = 2 -> odds 0 -> not > 0: answer.
  assert prediction.null_odds == pytest.approx(0.0)
  assert prediction.text == "the"


def test_v1_ignores_cls_and_decode_predictions_groups_windows():
  other = squad.SquadExample(id="q2", title="", question="?", context=CONTEXT,
                            answer_texts=("sat",), answer_starts=(8,))
  feats = windows_lib.Features(
      input_ids=(np.zeros(7, np.int32),) * 2,
      token_type_ids=(np.zeros(7, np.int32),) * 2,
      start_positions=np.zeros(2, np.int32), end_positions=np.zeros(2, np.int32),
      example_index=np.array([1, 0], np.int32),
      context_offset=np.array([2, 2], np.int32),
      token_char_spans=(SPANS, SPANS))
  start = [_logits(7, {0: 50.0, 4: 3.0}), _logits(7, {3: 3.0})]
  end = [_logits(7, {0: 50.0, 4: 3.0}), _logits(7, {3: 3.0})]
  predictions = decoding.decode_predictions(
      [EXAMPLE, other], feats, start, end, config.DecodeConfig())
  assert predictions.texts() == {"q1": "cat", "q2": "sat"}
  assert predictions.null_odds() == {"q1": 0.0, "q2": 0.0}
  assert predictions.nbest()["q1"][0]["text"] == "cat"


def test_decode_predictions_rejects_wrong_logit_count():
  feats = _features([(2, 0, 4)])
  with pytest.raises(ValueError, match="logits for 2 start / 2 end windows"):
    decoding.decode_predictions([EXAMPLE], feats, [np.zeros(7)] * 2,
                               [np.zeros(7)] * 2, config.DecodeConfig())


def test_window_log_softmax_covers_cls_and_context_only():
  logits = np.array([1.0, 5.0, 2.0, 3.0, 9.0], np.float32)
  got = decoding.window_log_softmax(logits, context_offset=2,
                                   num_context_tokens=2)
  norm = np.log(np.exp(1.0) + np.exp(2.0) + np.exp(3.0))
  np.testing.assert_allclose(got[[0, 2, 3]], [1.0 - norm, 2.0 - norm,
                                              3.0 - norm], rtol=1e-12)
  assert got[1] == got[4] == -np.inf
  assert got.dtype == np.float64


PIPELINE = config.DecodeConfig(n_best_size=5, span_scoring="pipeline")


def test_pipeline_scoring_prefers_a_peaked_window_over_larger_logits():
  # Window 0: the cat sat here, every token at 5 (a flat window).
  # Window 1: cat sat here, only "here" high.
  feats = _features([(2, 0, 4), (2, 1, 4)])
  flat = _logits(7, {2: 5.0, 3: 5.0, 4: 5.0, 5: 5.0})
  peaked = _logits(6, {4: 4.0})
  start, end = [flat, peaked], [flat, peaked]
  by_logits = decoding.decode_example(EXAMPLE, [0, 1], feats, start, end,
                                     config.DecodeConfig(n_best_size=5))
  assert (by_logits.text, by_logits.score) == ("the", 10.0)
  by_pipeline = decoding.decode_example(EXAMPLE, [0, 1], feats, start, end,
                                      PIPELINE)
  assert by_pipeline.text == "here"
  # Window 1 normalizes over [CLS] and its 3 context tokens: -10, -10, -10, 4.
  log_p = 4.0 - np.log(3 * np.exp(-10.0) + np.exp(4.0))
  assert by_pipeline.score == pytest.approx(2 * log_p, rel=1e-12)
  assert by_pipeline.nbest[0].start_logit == pytest.approx(log_p, rel=1e-12)


def test_pipeline_scoring_null_score_is_minimum_over_windows():
  feats = _features([(2, 0, 2), (2, 2, 4)])
  start = [_logits(5, {0: 5.0, 2: 1.0}), _logits(5, {0: 1.0, 3: 2.0})]
  end = [_logits(5, {0: 5.0, 2: 1.0}), _logits(5, {0: 1.0, 3: 2.0})]
  v2 = dataclasses.replace(PIPELINE, version_2_with_negative=True)
  prediction = decoding.decode_example(EXAMPLE, [0, 1], feats, start, end, v2)

  def log_p(values, index):
    return values[index] - np.log(np.exp(values).sum())
  window0 = np.array([5.0, 1.0, -10.0])  # [CLS], "the", "cat"
  window1 = np.array([1.0, -10.0, 2.0])  # [CLS], "sat", "here"
  null = min(2 * log_p(window0, 0), 2 * log_p(window1, 0))
  best = 2 * log_p(window1, 2)  # "here"
  assert prediction.text == "here"
  assert prediction.null_odds == pytest.approx(null - best, rel=1e-12)


def test_pipeline_scoring_adds_probabilities_of_windows_with_the_same_text():
  # Windows: "the cat sat", "cat sat here", "sat here"; the first two pick
  # "cat" (p = e / (e + 2) at start and end), the last "here" (e / (e + 1)).
  feats = _features([(2, 0, 3), (2, 1, 4), (2, 2, 4)])
  start = [_logits(6, {2: 0.0, 3: 1.0, 4: 0.0}),
           _logits(6, {2: 1.0, 3: 0.0, 4: 0.0}),
           _logits(5, {2: 0.0, 3: 1.0})]
  prediction = decoding.decode_example(EXAMPLE, [0, 1, 2], feats, start, start,
                                      PIPELINE)
  cat = 2 * (1.0 - np.log(np.exp(-10.0) + 2 + np.e))
  here = 2 * (1.0 - np.log(np.exp(-10.0) + 1 + np.e))
  assert here > cat and np.log(2) + cat > here
  assert (prediction.text, prediction.start_char) == ("cat", 4)
  assert prediction.score == pytest.approx(np.log(2) + cat, rel=1e-12)
  assert [(c.text, c.score) for c in prediction.nbest] == [
      ("cat", pytest.approx(np.log(2) + cat, rel=1e-12)),
      ("here", pytest.approx(here, rel=1e-12))]
  by_logits = decoding.decode_example(EXAMPLE, [0, 1, 2], feats, start, start,
                                     config.DecodeConfig(n_best_size=5))
  assert by_logits.text == "cat"  # The first of the ties at 2.0.


def test_best_span_considers_every_valid_span():
  starts = np.array([9.0, 0.0, 3.0, 1.0, 2.0, 9.0])
  ends = np.array([9.0, 0.0, 0.0, 1.0, 4.0, 9.0])
  # Context = positions 1..4; spans of at most 2 tokens.
  assert decoding.best_span(starts, ends, context_offset=1,
                           num_context_tokens=4, max_answer_length=2) == (4, 4)
  assert decoding.best_span(starts, ends, context_offset=1,
                           num_context_tokens=3, max_answer_length=2) == (2, 3)
  assert decoding.best_span(starts, ends, context_offset=1,
                           num_context_tokens=0, max_answer_length=2) is None


@pytest.mark.slow
def test_pipeline_scoring_answers_as_the_transformers_pipeline(
    tokenizer):
  """Same answers and scores as pipeline("question-answering") on windows.

  The pipeline's `doc_stride` is the overlap of consecutive windows, tfqa's
  the step between their starts: each question gets the overlap that puts
  the pipeline's windows where tfqa's are. align_to_words=False: the
  pipeline otherwise widens spans to whole words.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  from conftest import tiny_bert_config, tiny_squad  # pylint: disable=g-import-not-at-top
  tf.random.set_seed(4)
  model = transformers.TFBertForQuestionAnswering(transformers.BertConfig(
      **tiny_bert_config(hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)))
  feature_config = config.FeatureConfig(max_seq_length=20, doc_stride=3,
                                        max_query_length=12)
  decode = config.DecodeConfig(n_best_size=24, max_answer_length=6,
                               span_scoring="pipeline")
  examples = squad.parse_squad(tiny_squad(version_2=False),
                              source="tiny").examples
  built = windows_lib.build_features(examples, tokenizer, feature_config)
  assert len(built) > 2 * len(examples)  # Several windows per context.
  starts, ends = [], []
  for ids, types in zip(built.input_ids, built.token_type_ids):
    out = model({"input_ids": ids[None], "token_type_ids": types[None],
                 "attention_mask": np.ones_like(ids)[None]}, training=False)
    starts.append(out.start_logits.numpy()[0])
    ends.append(out.end_logits.numpy()[0])
  predictions = decoding.decode_predictions(examples, built, starts, ends,
                                           decode).by_id
  pipe = transformers.pipeline("question-answering", model=model,
                               tokenizer=tokenizer, framework="tf",
                               dtype=None)
  for example in examples:
    question_pieces = len(tokenizer.tokenize(example.question))
    overlap = (feature_config.max_seq_length - question_pieces - 3 -
               feature_config.doc_stride)
    got = pipe(question=example.question, context=example.context,
               max_seq_len=feature_config.max_seq_length, doc_stride=overlap,
               max_answer_len=decode.max_answer_length, align_to_words=False,
               max_question_len=feature_config.max_query_length)
    want = predictions[example.id]
    assert (got["answer"], got["start"], got["end"]) == (
        want.text, want.start_char, want.end_char), example.id
    # The pipeline's score is p(start) * p(end).
    assert got["score"] == pytest.approx(np.exp(want.score), rel=1e-4)
