"""Tests for tfqa.inference.batching: every window once, length-sorted, padded as the run's padding mode says."""

import numpy as np
import pytest

from tfqa import config
from tfqa.data import windows as windows_lib
from tfqa.inference import batching

LENGTHS = (5, 2, 7, 3, 2)


def _windows(lengths=LENGTHS):
  """Windows whose ids encode (window, position); type 1 after position 0."""
  ids = tuple(np.arange(1, n + 1, dtype=np.int32) + 100 * w
              for w, n in enumerate(lengths))
  n = len(lengths)
  return windows_lib.Features(
      input_ids=ids,
      token_type_ids=tuple((np.arange(len(i)) > 0).astype(np.int32)
                           for i in ids),
      start_positions=np.zeros(n, np.int32),
      end_positions=np.zeros(n, np.int32),
      example_index=np.arange(n, dtype=np.int32),
      context_offset=np.zeros(n, np.int32),
      token_char_spans=tuple(np.zeros((len(i), 2), np.int32) for i in ids))


def _batches(padding, multiple=4, batch_size=2, max_seq_length=8):
  return list(batching.length_sorted_batches(
      _windows(), batch_size=batch_size, max_seq_length=max_seq_length,
      pipeline_config=config.PipelineConfig(padding=padding,
                                            pad_to_multiple_of=multiple)))


@pytest.mark.parametrize("padding", ["width_buckets", "bucketed"])
def test_windows_are_sorted_by_length_and_padded_to_a_multiple(padding):
  batches = _batches(padding)
  assert [b["window_index"].tolist() for b in batches] == [[1, 4], [3, 0],
                                                           [2]]
  # Longest 2 -> 4; longest 5 -> 8; longest 7 -> 8 (max_seq_length caps it).
  assert [b["input_ids"].shape for b in batches] == [(2, 4), (2, 8), (1, 8)]
  first = batches[0]
  assert first["input_ids"].tolist() == [[101, 102, 0, 0], [401, 402, 0, 0]]
  assert first["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
  assert first["token_type_ids"].tolist() == [[0, 1, 0, 0], [0, 1, 0, 0]]
  for b in batches:
    assert {b[k].dtype for k in ("input_ids", "attention_mask",
                                 "token_type_ids")} == {np.dtype(np.int32)}


def test_max_length_keeps_window_order_at_full_width():
  batches = _batches("max_length")
  assert [b["window_index"].tolist() for b in batches] == [[0, 1], [2, 3],
                                                           [4]]
  assert [b["input_ids"].shape for b in batches] == [(2, 8), (2, 8), (1, 8)]
  assert batches[0]["attention_mask"].tolist() == [
      [1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]]


def test_a_multiple_of_one_pads_to_the_longest_window():
  batches = _batches("width_buckets", multiple=1, batch_size=3)
  assert [b["window_index"].tolist() for b in batches] == [[1, 4, 3], [0, 2]]
  assert [b["input_ids"].shape for b in batches] == [(3, 3), (2, 7)]


@pytest.mark.parametrize("padding, multiple, batch_size, tokens", [
    # (2, 4) + (2, 8) + (1, 8), as in the batches above.
    ("width_buckets", 4, 2, 2 * 4 + 2 * 8 + 8),
    ("max_length", 4, 2, 5 * 8),
    ("width_buckets", 1, 3, 3 * 3 + 2 * 7),
])
def test_padded_tokens_are_those_of_the_batches(padding, multiple, batch_size,
                                                tokens):
  pipeline_config = config.PipelineConfig(padding=padding,
                                          pad_to_multiple_of=multiple)
  assert batching.padded_tokens(
      LENGTHS, batch_size=batch_size, max_seq_length=8,
      pipeline_config=pipeline_config) == tokens == sum(
          b["input_ids"].size for b in _batches(padding, multiple, batch_size))
  assert batching.padded_tokens((), batch_size=2, max_seq_length=8) == 0


def test_no_windows_no_batches():
  assert list(batching.length_sorted_batches(
      _windows(()), batch_size=2, max_seq_length=8)) == []


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True, None])
def test_a_bad_batch_size_is_refused(batch_size):
  with pytest.raises(ValueError, match=rf"Invalid value for argument "
                     rf"`batch_size`\. Received: batch_size={batch_size!r}\. "
                     rf"Expected a positive int\."):
    batching.length_sorted_batches(_windows(), batch_size=batch_size,
                                   max_seq_length=8)
  with pytest.raises(ValueError, match="`batch_size`"):
    batching.padded_tokens(LENGTHS, batch_size=batch_size, max_seq_length=8)
