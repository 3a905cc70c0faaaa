"""Tests for tfqa.serving.windows: the graph's windows equal features.build_features'."""

import numpy as np
import tensorflow as tf

from tfqa import serving
from tfqa.data import windows as features
from tfqa.serving import windows as serving_windows

from helpers.serving_graph import FEATURES, pair_examples


def test_windows_match_build_features(vocab_file, tokenizer):
  pairs = [("what is the capital of the city of paris", "paris. " * 30),
           ("who?", "the town"), ("", "bread"), ("who?", "")]
  graph_tokenizer = serving.GraphBertTokenizer(vocab_file,
                                                     do_lower_case=True)
  tokens = graph_tokenizer.tokenize(
      tf.constant([q for q, _ in pairs] + [c for _, c in pairs]))
  starts = tokens.row_splits[:-1]
  lengths = tokens.row_splits[1:] - starts
  n = len(pairs)
  windows = serving_windows.build_windows(
      tokens.ids, question_start=starts[:n], question_length=lengths[:n],
      context_start=starts[n:], context_length=lengths[n:],
      feature_config=FEATURES, tokenizer=graph_tokenizer)
  built = features.build_features(pair_examples(pairs), tokenizer, FEATURES)
  assert windows.example.numpy().tolist() == built.example_index.tolist()
  assert np.sum(built.example_index == 0) >= 5
  mask = windows.attention_mask.numpy()
  assert mask.shape[1] == max(built.lengths)
  for row in range(len(built)):
    length = built.lengths[row]
    assert mask[row].tolist() == [1] * length + [0] * (mask.shape[1] - length)
    for got, want in ((windows.input_ids, built.input_ids),
                      (windows.token_type_ids, built.token_type_ids)):
      assert got.numpy()[row, :length].tolist() == want[row].tolist()
    assert windows.context_offset.numpy()[row] == built.context_offset[row]
    example = built.example_index[row]
    first = (windows.context_start.numpy()[row] -
             starts.numpy()[n + example])
    assert first == np.sum(built.example_index[:row] == example) * 8
    assert (windows.context_length.numpy()[row] ==
            len(built.token_char_spans[row]))
