"""tf.data pipeline over windows: training batches as a pure function of the step.

Element spec of the training dataset (the contract with the model and the docs):
  ({"input_ids": int32 [batch, seq], "attention_mask": int32 [batch, seq],
    "token_type_ids": int32 [batch, seq]},
   {"start_positions": int32 [batch], "end_positions": int32 [batch]})
`seq` is the longest window of the batch rounded up to `pad_to_multiple_of`
(or `max_seq_length` with padding="max_length"); inference batches are
padded the same way (inference/batching.py).

Training batches are planned up front in NumPy from (seed, epoch), so the
batch at global step k is the same in every process; resuming at step k needs
no replay and no iterator state beyond k.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfqa import config as config_lib
from tfqa import errors
from tfqa.data import windows as windows_lib

LABEL_NAMES = ("start_positions", "end_positions")
# Windows are grouped by length within chunks of this many batches: long
# enough to group similar lengths, short enough to keep batches well mixed.
_BUCKET_CHUNK_BATCHES = 50


def steps_per_epoch(num_windows: int, batch_size: int) -> int:
  """Training steps in one epoch: every window at least once."""
  return -(-num_windows // batch_size)


def plan_epoch(lengths: np.ndarray, *, batch_size: int, seed: int, epoch: int,
               bucket_width: int | None) -> list[np.ndarray]:
  """Window indices of each batch of one epoch, a pure function of its args.

  Args:
    lengths: unpadded length of each window.
    batch_size: windows per batch (the last batch may be smaller).
    seed: the run's seed.
    epoch: the epoch number (0-based); each epoch has its own order.
    bucket_width: None: batches of windows drawn at random. Else windows
      are grouped by ceil(length / bucket_width) (1: sorted by exact length)
      within chunks of the epoch's random order, keeping that random order
      inside each group, and the batches cut from the groups are shuffled.

  Returns:
    `steps_per_epoch(len(lengths), batch_size)` int32 index arrays, each of
    exactly `batch_size` windows: the epoch's last batch is completed with
    the first windows of its order, so batch shapes are static and a batch
    splits evenly across replicas (the same math on 1 or N replicas).
  """
  rng = np.random.default_rng([seed, epoch])
  order = rng.permutation(len(lengths)).astype(np.int32)
  order = np.resize(order, steps_per_epoch(len(lengths), batch_size) *
                    batch_size)
  if bucket_width is None:
    return _split(order, batch_size)
  chunk = batch_size * _BUCKET_CHUNK_BATCHES
  batches = []
  for begin in range(0, len(order), chunk):
    part = order[begin:begin + chunk]
    groups = -(-lengths[part] // bucket_width)
    # Stable sort keeps the random order within a group.
    part = part[np.argsort(groups, kind="stable")]
    batches.extend(_split(part, batch_size))
  return [batches[i] for i in rng.permutation(len(batches))]


def bucket_width(pipeline_config: config_lib.PipelineConfig) -> int | None:
  """plan_epoch's bucket_width for a padding mode (module doc of config)."""
  if pipeline_config.padding == "width_buckets":
    return pipeline_config.pad_to_multiple_of
  if pipeline_config.padding == "bucketed":
    return 1
  return None


def _split(indices, batch_size):
  return [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]


def train_dataset(features: windows_lib.Features, *, batch_size: int,
                  seed: int, num_epochs: int, max_seq_length: int,
                  pipeline_config: config_lib.PipelineConfig = (
                      config_lib.PipelineConfig()),
                  start_step: int = 0,
                  stop_step: int | None = None,
                  num_replicas: int = 1,
                  local_replicas: Sequence[int] = (0,)) -> tf.data.Dataset:
  """Training batches for global steps [start_step, stop_step).

  Args:
    features: training windows.
    batch_size: global batch size.
    seed: the run's seed; with the step it fixes every batch.
    num_epochs: epochs planned; steps index into their concatenation.
    max_seq_length: the windows' maximum length (padding="max_length").
    pipeline_config: padding mode.
    start_step: first global step to produce (0-based).
    stop_step: one past the last step; defaults to the end of the last epoch.
    num_replicas: replicas the global batch is split across, evenly.
    local_replicas: the replicas this input pipeline feeds; each step yields
      one element per local replica (its slice of the global batch), in the
      order tf.distribute hands elements to a worker's replicas.

  Returns:
    A dataset of (model inputs, labels) with the module's element spec.

  Raises:
    ValueError: the step range is empty or outside the planned epochs, or
      the batch does not split evenly across replicas.
  """
  if batch_size % num_replicas:
    raise errors.ArgumentError(
        "train_batch_size", batch_size, note=f" with {num_replicas} replicas",
        expected=f"Expected a multiple of the number of replicas (it is the global "
        f"batch, split evenly). Use e.g. "
        f"{max(1, batch_size // num_replicas) * num_replicas}.")
  per_epoch = steps_per_epoch(len(features), batch_size)
  total = per_epoch * num_epochs
  stop_step = total if stop_step is None else stop_step
  if not 0 <= start_step < stop_step <= total:
    raise ValueError(
        f"Invalid step range [{start_step}, {stop_step}): expected "
        f"0 <= start_step < stop_step <= {total} ({num_epochs} epochs of "
        f"{per_epoch} steps).")
  lengths = features.lengths
  first_epoch, last_epoch = start_step // per_epoch, (stop_step - 1) // per_epoch
  batches = []
  for epoch in range(first_epoch, last_epoch + 1):
    batches.extend(plan_epoch(
        lengths, batch_size=batch_size, seed=seed, epoch=epoch,
        bucket_width=bucket_width(pipeline_config)))
  offset = first_epoch * per_epoch
  plan = batches[start_step - offset:stop_step - offset]
  if num_replicas > 1:
    plan = [np.split(batch, num_replicas)[replica] for batch in plan
            for replica in local_replicas]
  columns = _window_columns(features)
  pad = _padder(pipeline_config, max_seq_length)

  def make_batch(indices):
    inputs = _padded_inputs(columns, indices, pad)
    labels = {name: tf.gather(columns[name], indices) for name in LABEL_NAMES}
    return inputs, labels

  return (_ragged_index_dataset(plan)
          .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE,
               deterministic=True)
          .prefetch(tf.data.AUTOTUNE))


def _ragged_index_dataset(plan):
  indices = tf.RaggedTensor.from_row_lengths(
      np.concatenate(plan).astype(np.int32),
      np.array([len(b) for b in plan], np.int64))
  return tf.data.Dataset.from_tensor_slices(indices)


def _window_columns(features):
  lengths = features.lengths.astype(np.int64)
  return {
      "input_ids": tf.RaggedTensor.from_row_lengths(
          np.concatenate(features.input_ids), lengths),
      "token_type_ids": tf.RaggedTensor.from_row_lengths(
          np.concatenate(features.token_type_ids), lengths),
      "start_positions": tf.constant(features.start_positions),
      "end_positions": tf.constant(features.end_positions),
  }


def padded_tokens(lengths: np.ndarray, *, batch_size: int, seed: int,
                  epoch: int, pipeline_config: config_lib.PipelineConfig,
                  max_seq_length: int) -> np.ndarray:
  """Tokens, padding included, that each step of an epoch computes."""
  plan = plan_epoch(lengths, batch_size=batch_size, seed=seed, epoch=epoch,
                    bucket_width=bucket_width(pipeline_config))
  longest = np.array([lengths[batch].max() for batch in plan])
  return np.array([len(batch) for batch in plan]) * windows_lib.padded_width(
      longest, pipeline_config, max_seq_length)


def _padder(pipeline_config, max_seq_length):
  """Returns fn(longest length in batch) -> padded length."""
  return functools.partial(windows_lib.padded_width,
                           pipeline_config=pipeline_config,
                           max_seq_length=max_seq_length, minimum=tf.minimum)


def _padded_inputs(columns, indices, padded_length):
  input_ids = tf.gather(columns["input_ids"], indices)
  width = padded_length(tf.reduce_max(input_ids.row_lengths()))
  shape = tf.stack([tf.cast(tf.size(indices), tf.int64), width])
  ids = input_ids.to_tensor(shape=shape)
  return {
      "input_ids": ids,
      "attention_mask": tf.ones_like(input_ids).to_tensor(shape=shape),
      "token_type_ids": tf.gather(columns["token_type_ids"], indices)
                        .to_tensor(shape=shape),
  }
