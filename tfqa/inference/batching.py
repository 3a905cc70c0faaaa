"""Batches of windows for inference: length-sorted NumPy arrays padded as the run's padding mode says."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from tfqa import config as config_lib
from tfqa import errors
from tfqa.data import windows as windows_lib


def length_sorted_batches(windows, *, batch_size: int, max_seq_length: int,
                          pipeline_config: config_lib.PipelineConfig = (
                              config_lib.PipelineConfig())
                          ) -> Iterator[dict]:
  """Every window once, in NumPy batches of at most `batch_size`.

  Windows are sorted by length (in window order with padding="max_length")
  and each batch is padded with id 0, mask 0 and type 0 to its longest
  window rounded up to pad_to_multiple_of (at most max_seq_length), or to
  max_seq_length with padding="max_length": the widths the model sees in
  training. "window_index" [n] maps each row back to `windows`.

  Args:
    windows: a features.Features.
    batch_size: windows per batch.
    max_seq_length: the windows' maximum length.
    pipeline_config: the padding mode.

  Raises:
    ValueError: batch_size is not a positive int.
  """
  return _batches(windows, _plan(windows.lengths, batch_size, max_seq_length,
                                 pipeline_config))


def padded_tokens(lengths, *, batch_size: int, max_seq_length: int,
                  pipeline_config: config_lib.PipelineConfig = (
                      config_lib.PipelineConfig())) -> int:
  """Tokens, padding included, in length_sorted_batches' batches of windows
  of these lengths: what a model computes to answer them.

  Raises:
    ValueError: batch_size is not a positive int.
  """
  return sum(len(rows) * width for rows, width in _plan(
      lengths, batch_size, max_seq_length, pipeline_config))


def _plan(lengths, batch_size, max_seq_length, pipeline_config):
  """[(window indices, padded width)] of each batch, in batch order."""
  if isinstance(batch_size, bool) or not isinstance(
      batch_size, int) or batch_size < 1:
    raise errors.ArgumentError("batch_size", batch_size,
                               "Expected a positive int.")
  lengths = np.asarray(lengths)
  order = (np.argsort(lengths, kind="stable")
           if pipeline_config.padding != "max_length" else
           np.arange(len(lengths)))
  plan = []
  for lo in range(0, len(order), batch_size):
    rows = order[lo:lo + batch_size]
    plan.append((rows, int(windows_lib.padded_width(
        int(lengths[rows].max()), pipeline_config, max_seq_length))))
  return plan


def _batches(windows, plan):
  lengths = np.asarray(windows.lengths)
  for rows, width in plan:
    ids = np.zeros((len(rows), width), np.int32)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for r, w in enumerate(rows):
      n = lengths[w]
      ids[r, :n] = windows.input_ids[w]
      mask[r, :n] = 1
      types[r, :n] = windows.token_type_ids[w]
    yield {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
           "window_index": rows.astype(np.int32)}
