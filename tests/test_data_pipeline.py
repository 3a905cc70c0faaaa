"""Tests for tfqa.data.pipeline: deterministic step-indexed batches, padding, eval order."""

import numpy as np
import pytest
import tensorflow as tf

from tfqa import config
from tfqa.data import pipeline
from tfqa.data import windows as windows_lib


def _fake_features(lengths):
  """Windows whose ids encode (window, position) so batches can be checked."""
  ids = tuple(np.arange(1, n + 1, dtype=np.int32) + 1000 * w
              for w, n in enumerate(lengths))
  n = len(lengths)
  return windows_lib.Features(
      input_ids=ids,
      token_type_ids=tuple(np.ones(len(i), np.int32) for i in ids),
      start_positions=np.arange(n, dtype=np.int32),
      end_positions=np.arange(n, dtype=np.int32) + 1,
      example_index=np.arange(n, dtype=np.int32),
      context_offset=np.zeros(n, np.int32),
      token_char_spans=tuple(np.zeros((len(i), 2), np.int32) for i in ids))


def _batches(dataset):
  return [(inputs["input_ids"].numpy(), labels["start_positions"].numpy())
          for inputs, labels in dataset]


LENGTHS = [5, 9, 3, 17, 8, 2, 30, 11, 7, 4]


@pytest.mark.parametrize("bucket_width", [None, 1, 8])
def test_plan_epoch_covers_every_window_in_full_batches(bucket_width):
  lengths = np.array(LENGTHS * 30, np.int32)
  plan = pipeline.plan_epoch(lengths, batch_size=8, seed=3, epoch=0,
                                   bucket_width=bucket_width)
  assert len(plan) == pipeline.steps_per_epoch(300, 8) == 38
  assert [len(b) for b in plan] == [8] * 38
  # 38 * 8 = 304 slots: every window once, the epoch's first 4 twice.
  counts = np.bincount(np.concatenate(plan), minlength=300)
  assert sorted(counts.tolist()) == [1] * 296 + [2] * 4
  order = np.random.default_rng([3, 0]).permutation(300)
  assert sorted(np.flatnonzero(counts == 2).tolist()) == sorted(
      order[:4].tolist())


@pytest.mark.parametrize("bucket_width", [None, 1, 8])
def test_plan_epoch_is_a_pure_function_of_seed_and_epoch(bucket_width):
  lengths = np.array(LENGTHS * 30, np.int32)
  plan = lambda seed, epoch: [b.tolist() for b in pipeline.plan_epoch(
      lengths, batch_size=3, seed=seed, epoch=epoch,
      bucket_width=bucket_width)]
  assert plan(1, 0) == plan(1, 0)
  assert plan(1, 0) != plan(1, 1)
  assert plan(1, 0) != plan(2, 0)


def test_bucketed_batches_group_similar_lengths():
  rng = np.random.default_rng(0)
  lengths = rng.integers(10, 384, size=2000).astype(np.int32)
  spread = lambda width: np.mean([
      np.ptp(lengths[b]) for b in pipeline.plan_epoch(
          lengths, batch_size=16, seed=0, epoch=0, bucket_width=width)])
  assert spread(1) < spread(None) / 5


def _plan_stats(plan, lengths, groups, multiple=64):
  """(mean distinct groups per batch, mean padded width) of a plan."""
  distinct = np.mean([len(set(groups[b])) for b in plan])
  width = np.mean([-(-lengths[b].max() // multiple) * multiple for b in plan])
  return distinct, width


def test_width_buckets_pad_as_little_as_sorting_with_varied_batches():
  # 100 "paragraphs" of 6 questions each: windows of one paragraph have
  # nearly the same length, so exact sorting batches them together.
  rng = np.random.default_rng(0)
  paragraph_lengths = rng.integers(60, 380, size=100)
  groups = np.repeat(np.arange(100), 6)
  lengths = (paragraph_lengths[groups] +
             rng.integers(0, 4, size=600)).astype(np.int32)
  plan = lambda width: pipeline.plan_epoch(
      lengths, batch_size=16, seed=0, epoch=0, bucket_width=width)
  sorted_groups, sorted_width = _plan_stats(plan(1), lengths, groups)
  random_groups, random_width = _plan_stats(plan(None), lengths, groups)
  bucket_groups, bucket_width = _plan_stats(plan(64), lengths, groups)
  assert sorted_groups < 5 and random_groups > 14
  assert bucket_groups > 2.5 * sorted_groups
  assert bucket_width < sorted_width * 1.05
  assert bucket_width < random_width * 0.8


def test_width_buckets_batches_hold_one_padded_width_but_at_boundaries():
  rng = np.random.default_rng(1)
  lengths = rng.integers(1, 257, size=640).astype(np.int32)
  plan = pipeline.plan_epoch(lengths, batch_size=16, seed=2, epoch=0,
                                   bucket_width=64)
  widths = [len(set(-(-lengths[b] // 64))) for b in plan]
  # 4 widths: at most 3 batches straddle two groups.
  assert sum(w > 1 for w in widths) <= 3
  assert max(widths) <= 2


@pytest.mark.parametrize("padding, expected", [
    ("width_buckets", 64), ("bucketed", 1), ("dynamic", None),
    ("max_length", None)])
def test_bucket_width_of_each_padding_mode(padding, expected):
  assert pipeline.bucket_width(
      config.PipelineConfig(padding=padding)) == expected


def test_train_dataset_element_spec_and_padding():
  features = _fake_features(LENGTHS)
  dataset = pipeline.train_dataset(
      features, batch_size=4, seed=0, num_epochs=1, max_seq_length=32,
      pipeline_config=config.PipelineConfig(pad_to_multiple_of=8))
  inputs_spec, labels_spec = dataset.element_spec
  assert set(inputs_spec) == {"input_ids", "attention_mask", "token_type_ids"}
  assert set(labels_spec) == {"start_positions", "end_positions"}
  for spec in inputs_spec.values():
    assert spec.dtype == tf.int32 and spec.shape.as_list() == [None, None]
  for inputs, labels in dataset:
    ids = inputs["input_ids"].numpy()
    windows = labels["start_positions"].numpy()
    longest = max(LENGTHS[w] for w in windows)
    assert ids.shape == (len(windows), min(32, -(-longest // 8) * 8))
    for row, w in enumerate(windows):
      n = LENGTHS[w]
      assert ids[row, :n].tolist() == features.input_ids[w].tolist()
      assert not ids[row, n:].any()
      assert inputs["attention_mask"].numpy()[row].tolist() == (
          [1] * n + [0] * (ids.shape[1] - n))
    assert (labels["end_positions"].numpy() == windows + 1).all()


@pytest.mark.parametrize("padding", config.PADDING_MODES)
def test_padded_tokens_are_those_of_each_batch_the_dataset_yields(padding):
  pipeline_config = config.PipelineConfig(padding=padding,
                                          pad_to_multiple_of=8)
  per_epoch = pipeline.steps_per_epoch(len(LENGTHS), 4)
  dataset = pipeline.train_dataset(
      _fake_features(LENGTHS), batch_size=4, seed=3, num_epochs=2,
      max_seq_length=40, pipeline_config=pipeline_config,
      start_step=per_epoch)
  predicted = pipeline.padded_tokens(
      np.array(LENGTHS), batch_size=4, seed=3, epoch=1,
      pipeline_config=pipeline_config, max_seq_length=40)
  assert predicted.tolist() == [ids.size for ids, _ in _batches(dataset)]


def test_max_length_padding_pads_every_batch_to_max_seq_length():
  dataset = pipeline.train_dataset(
      _fake_features(LENGTHS), batch_size=4, seed=0, num_epochs=1,
      max_seq_length=40,
      pipeline_config=config.PipelineConfig(padding="max_length"))
  assert {ids.shape[1] for ids, _ in _batches(dataset)} == {40}


def test_resuming_at_any_step_yields_the_same_remaining_batches():
  features = _fake_features(LENGTHS * 3)
  full = _batches(pipeline.train_dataset(
      features, batch_size=4, seed=7, num_epochs=3, max_seq_length=32))
  assert len(full) == 3 * 8
  for start in (1, 7, 8, 13):
    resumed = _batches(pipeline.train_dataset(
        features, batch_size=4, seed=7, num_epochs=3, max_seq_length=32,
        start_step=start))
    assert len(resumed) == len(full) - start
    for (a_ids, a_w), (b_ids, b_w) in zip(full[start:], resumed):
      assert (a_ids == b_ids).all() and (a_w == b_w).all()


def test_replica_slices_partition_each_global_batch():
  features = _fake_features(LENGTHS * 2)
  kwargs = dict(batch_size=4, seed=5, num_epochs=1, max_seq_length=32)
  whole = _batches(pipeline.train_dataset(features, **kwargs))
  # Worker 1 of 2 workers with 2 replicas each: replicas 2 and 3 of 4.
  sliced = _batches(pipeline.train_dataset(
      features, num_replicas=4, local_replicas=(2, 3), **kwargs))
  assert len(sliced) == 2 * len(whole)
  for step, (_, windows) in enumerate(whole):
    assert sliced[2 * step][1].tolist() == windows[2:3].tolist()
    assert sliced[2 * step + 1][1].tolist() == windows[3:4].tolist()


def test_batch_must_split_evenly_across_replicas():
  with pytest.raises(ValueError, match=r"train_batch_size=6 with 4 replicas"
                                       r".*Use e.g. 4"):
    pipeline.train_dataset(_fake_features(LENGTHS), batch_size=6,
                                 seed=0, num_epochs=1, max_seq_length=32,
                                 num_replicas=4, local_replicas=(0,))


def test_train_dataset_rejects_bad_step_range():
  with pytest.raises(ValueError, match=r"Invalid step range \[5, 3\)"):
    pipeline.train_dataset(_fake_features(LENGTHS), batch_size=4,
                                 seed=0, num_epochs=1, max_seq_length=32,
                                 start_step=5, stop_step=3)


def test_pipeline_config_validation():
  with pytest.raises(ValueError, match="padding='random'"):
    config.PipelineConfig(padding="random")
  with pytest.raises(ValueError, match="pad_to_multiple_of=0"):
    config.PipelineConfig(pad_to_multiple_of=0)
