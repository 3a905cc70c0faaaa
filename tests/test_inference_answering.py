"""Tests for tfqa.inference.answering: windows -> logits -> answers with any logits function and the run's settings."""

import numpy as np
import pytest
import tensorflow as tf

from tfqa import config
from tfqa.data import squad as data
from tfqa.data import windows as windows_lib
from tfqa.inference import answering
from tfqa.inference import logits as logits_lib

from conftest import FakeQAModel, tiny_squad

FEATURES = config.FeatureConfig(max_seq_length=32, doc_stride=8,
                                max_query_length=12)


def _run_config(**sections):
  return config.RunConfig(
      model=config.ModelConfig(model="m"),
      data=config.DataConfig(train_file="t.json"),
      features=FEATURES, **sections)


def _end_is_minus_position(inputs):
  ids = inputs["input_ids"]
  positions = tf.cast(tf.range(tf.shape(ids)[1]), tf.float32)
  return -tf.broadcast_to(positions, tf.shape(ids))


def _position_model():
  """Start logit = token id, end logit = -position; counts traces."""
  return FakeQAModel(lambda inputs: tf.cast(inputs["input_ids"], tf.float32),
                     _end_is_minus_position)


@pytest.fixture
def squad():
  return data.parse_squad(tiny_squad(True))


def test_logits_of_are_unpadded_and_in_window_order(squad, tokenizer):
  windows = windows_lib.build_features(squad.examples, tokenizer, FEATURES)
  run_config = _run_config(
      pipeline=config.PipelineConfig(pad_to_multiple_of=8),
      train=config.TrainConfig(eval_batch_size=3))
  model = _position_model()
  starts, ends = answering.logits_of(
      logits_lib.model_logits_fn(model), windows, run_config)
  assert len(starts) == len(windows) == len(ends)
  for window in range(len(windows)):
    assert starts[window].tolist() == windows.input_ids[window].tolist()
    assert ends[window].tolist() == [-float(i) for i in
                                     range(len(windows.input_ids[window]))]


def test_a_keras_model_is_traced_once_across_calls(squad, tokenizer):
  model = _position_model()
  for max_seq_length in (32, 48):  # other windows, other padded widths
    features = config.FeatureConfig(max_seq_length=max_seq_length,
                                    doc_stride=8, max_query_length=12)
    windows = windows_lib.build_features(squad.examples, tokenizer, features)
    run_config = config.RunConfig(
        model=config.ModelConfig(model="m"),
        data=config.DataConfig(train_file="t.json"), features=features)
    starts, _ = answering.logits_of(logits_lib.model_logits_fn(model),
                                    windows, run_config)
    assert [s.tolist() for s in starts] == [
        ids.tolist() for ids in windows.input_ids]
  assert model.traces == 1


def test_batches_follow_the_runs_batch_size_and_padding(squad, tokenizer):
  windows = windows_lib.build_features(squad.examples, tokenizer, FEATURES)
  shapes = []

  def logits_fn(ids, mask, types):
    del mask, types
    shapes.append(ids.shape)
    return ids * 1.0, ids * 1.0

  run_config = _run_config(
      pipeline=config.PipelineConfig(pad_to_multiple_of=16),
      train=config.TrainConfig(eval_batch_size=4))
  answering.logits_of(logits_fn, windows, run_config)
  n = len(windows)
  assert [rows for rows, _ in shapes] == [min(4, n - lo)
                                          for lo in range(0, n, 4)]
  assert {width for _, width in shapes} <= {16, 32}
  shapes.clear()
  answering.logits_of(logits_fn, windows, run_config, batch_size=n)
  assert shapes == [(n, 32)]


def test_answer_examples_answers_where_the_logits_point(tokenizer):
  examples = data.examples_from_text(
      ["what is the capital of france ?", "who built the town ?"],
      ["paris is the capital city of france .",
       "the keeper built the town ."])
  answer_ids = {tokenizer.convert_tokens_to_ids(word)
                for word in ("paris", "keeper")}

  def logits_fn(ids, mask, types):
    del mask
    # Highest start and end on the answer word, in the context only.
    hit = np.isin(ids, list(answer_ids)) & (types == 1)
    return hit * 10.0, hit * 10.0

  answered = answering.answer_examples(examples, logits_fn, _run_config(),
                                       tokenizer=tokenizer)
  assert answered.predictions.texts() == {"0": "paris", "1": "keeper"}
  assert [len(s) for s in answered.logits[0]] == list(
      answered.windows.lengths)
  again = answering.answer_examples(examples, logits_fn, _run_config(),
                                    windows=answered.windows)
  assert again.predictions.texts() == {"0": "paris", "1": "keeper"}
  assert again.windows is answered.windows


def test_answer_examples_needs_a_tokenizer_or_windows():
  with pytest.raises(ValueError, match=r"answer_examples needs `tokenizer` "
                     r"\(to build the windows\) or `windows`; received "
                     r"neither\."):
    answering.answer_examples([], lambda *a: None, _run_config())


@pytest.mark.parametrize("padding, multiple", [("width_buckets", 8),
                                               ("max_length", 8),
                                               ("width_buckets", 1)])
def test_padded_tokens_are_what_the_logits_function_computes(
    squad, tokenizer, padding, multiple):
  windows = windows_lib.build_features(squad.examples, tokenizer, FEATURES)
  run_config = _run_config(
      pipeline=config.PipelineConfig(padding=padding,
                                     pad_to_multiple_of=multiple),
      train=config.TrainConfig(eval_batch_size=3))
  shapes = []

  def recording_fn(input_ids, attention_mask, token_type_ids):
    shapes.append(input_ids.shape)
    return (np.zeros(input_ids.shape, np.float32),) * 2

  answering.logits_of(recording_fn, windows, run_config)
  assert answering.padded_tokens(windows, run_config) == sum(
      n * width for n, width in shapes)
  # Another batch size: other batches, counted as logits_of makes them.
  shapes.clear()
  answering.logits_of(recording_fn, windows, run_config, batch_size=2)
  assert answering.padded_tokens(windows, run_config, batch_size=2) == sum(
      n * width for n, width in shapes)
  assert len(shapes) == -(-len(windows) // 2)
