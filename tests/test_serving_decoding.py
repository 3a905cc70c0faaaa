"""Tests for tfqa.serving.decoding: the graph's answers (v1.1, v2.0 with a threshold, pipeline span scoring) equal the Python decoder's."""

import numpy as np
import pytest

from tfqa import config

from helpers.serving_graph import (DECODE, EMPTY_QUESTION, PAIRS,
                                   answer_pairs,
                                   assert_matches_reference, reference,
                                   serving_module)


@pytest.fixture(scope="module")
def bert_module(bert_vocab_file):
  return serving_module(bert_vocab_file)


def test_answer_matches_python_reference(bert_module, bert_tokenizer):
  expected, built = reference(PAIRS, bert_tokenizer, bert_module.logits_fn)
  assert np.sum(built.example_index == 6) >= 5  # The long context.
  got = answer_pairs(bert_module, PAIRS)
  assert any(got["answer"])
  assert_matches_reference(got, expected, DECODE, EMPTY_QUESTION)


def test_answer_matches_python_reference_v2(bert_module, bert_tokenizer,
                                            bert_vocab_file):
  v2 = config.DecodeConfig(n_best_size=5, max_answer_length=6,
                           version_2_with_negative=True)
  expected, _ = reference(PAIRS, bert_tokenizer, bert_module.logits_fn, v2)
  # A threshold between two examples' null odds, so both outcomes occur.
  odds = sorted({p.null_odds for i, p in enumerate(expected)
                 if p.start_char >= 0 and i not in EMPTY_QUESTION})
  threshold = (odds[len(odds) // 2 - 1] + odds[len(odds) // 2]) / 2
  v2 = config.DecodeConfig(n_best_size=5, max_answer_length=6,
                           version_2_with_negative=True,
                           null_score_diff_threshold=threshold)
  expected, _ = reference(PAIRS, bert_tokenizer, bert_module.logits_fn, v2)
  module = serving_module(bert_vocab_file, v2, logits_fn=bert_module.logits_fn)
  got = answer_pairs(module, PAIRS)
  assert "" in [got["answer"][i] for i in range(len(PAIRS))
                if PAIRS[i][1].strip() and i not in EMPTY_QUESTION]
  assert_matches_reference(got, expected, v2, EMPTY_QUESTION)
  null_score = expected[9].score  # Empty context: the null score.
  for row in EMPTY_QUESTION:
    assert got["score"][row] == pytest.approx(null_score, rel=1e-6)


@pytest.mark.parametrize("version_2", [False, True])
def test_softmax_span_scoring_matches_reference(
    bert_vocab_file, bert_tokenizer, bert_module, version_2):
  decode = config.DecodeConfig(n_best_size=5, max_answer_length=6,
                               version_2_with_negative=version_2,
                               span_scoring="pipeline")
  expected, _ = reference(PAIRS, bert_tokenizer, bert_module.logits_fn,
                           decode)
  module = serving_module(bert_vocab_file, decode, logits_fn=bert_module.logits_fn)
  assert_matches_reference(answer_pairs(module, PAIRS), expected, decode,
                            EMPTY_QUESTION)
