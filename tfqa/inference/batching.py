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
  if isinstance(batch_size, bool) or not isinstance(
      batch_size, int) or batch_size < 1:
    raise errors.ArgumentError("batch_size", batch_size,
                               "Expected a positive int.")
  return _batches(windows, batch_size,
                  lambda longest: int(windows_lib.padded_width(
                      longest, pipeline_config, max_seq_length)),
                  sort=pipeline_config.padding != "max_length")


def _batches(windows, batch_size, padded_width, *, sort):
  lengths = np.asarray(windows.lengths)
  order = (np.argsort(lengths, kind="stable") if sort else
           np.arange(len(lengths)))
  for lo in range(0, len(order), batch_size):
    rows = order[lo:lo + batch_size]
    width = padded_width(int(lengths[rows].max()))
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
