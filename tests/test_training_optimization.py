"""Tests for tfqa.training.optimization: the warmup/decay schedule and the AdamW optimizer."""

import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfqa.training import optimization


def _lr(schedule, step):
  return float(schedule(tf.constant(step, tf.int64)))


# WarmupLinearDecay


@pytest.mark.parametrize("step, expected", [
    (0, 0.0), (1, 1e-4), (5, 5e-4), (10, 1e-3), (11, 1e-3 * 89 / 90),
    (55, 5e-4), (99, 1e-3 / 90), (100, 0.0), (150, 0.0)])
def test_schedule_warms_up_then_decays_to_zero(step, expected):
  schedule = optimization.WarmupLinearDecay(1e-3, total_steps=100,
                                            warmup_steps=10)
  assert _lr(schedule, step) == pytest.approx(expected, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("step, expected", [(0, 2e-5), (25, 1.5e-5),
                                            (100, 0.0), (101, 0.0)])
def test_schedule_without_warmup_starts_at_peak(step, expected):
  schedule = optimization.WarmupLinearDecay(2e-5, total_steps=100,
                                            warmup_steps=0)
  assert _lr(schedule, step) == pytest.approx(expected, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("step, expected", [(0, 0.0), (2, 0.5), (3, 0.75),
                                            (4, 0.0)])
def test_schedule_all_warmup(step, expected):
  schedule = optimization.WarmupLinearDecay(1.0, total_steps=4,
                                            warmup_steps=4)
  assert _lr(schedule, step) == pytest.approx(expected, abs=1e-7)


def test_schedule_accepts_float_and_int32_steps():
  schedule = optimization.WarmupLinearDecay(1e-3, total_steps=100,
                                            warmup_steps=10)
  assert float(schedule(5)) == pytest.approx(5e-4)
  assert float(schedule(tf.constant(55, tf.int32))) == pytest.approx(5e-4)
  assert schedule(5).dtype == tf.float32


@pytest.mark.parametrize("total_steps, warmup_steps", [(0, 0), (-5, 0),
                                                       (10, -1), (10, 11)])
def test_schedule_rejects_invalid_shapes(total_steps, warmup_steps):
  with pytest.raises(ValueError, match=(
      rf"^Invalid schedule: total_steps={total_steps}, "
      rf"warmup_steps={warmup_steps}\. Expected 0 <= warmup_steps <= "
      rf"total_steps and total_steps > 0\.$")):
    optimization.WarmupLinearDecay(1e-3, total_steps=total_steps,
                                   warmup_steps=warmup_steps)


def test_schedule_config_round_trip():
  schedule = optimization.WarmupLinearDecay(3e-5, total_steps=1000,
                                            warmup_steps=100)
  assert schedule.get_config() == {"peak": 3e-5, "total_steps": 1000,
                                   "warmup_steps": 100}
  rebuilt = optimization.WarmupLinearDecay.from_config(schedule.get_config())
  assert rebuilt.get_config() == schedule.get_config()
  assert _lr(rebuilt, 550) == _lr(schedule, 550)


def test_schedule_is_registered_for_keras_serialization():
  schedule = optimization.WarmupLinearDecay(1e-3, total_steps=100,
                                            warmup_steps=10)
  serialized = tf_keras.optimizers.schedules.serialize(schedule)
  rebuilt = tf_keras.optimizers.schedules.deserialize(serialized)
  assert isinstance(rebuilt, optimization.WarmupLinearDecay)
  assert rebuilt.get_config() == schedule.get_config()


# create_optimizer


def _optimizer(**overrides):
  kwargs = dict(learning_rate=1e-3, total_steps=100, warmup_ratio=0.1,
                weight_decay=0.01, clip_norm=1.0)
  kwargs.update(overrides)
  return optimization.create_optimizer(**kwargs)


def test_create_optimizer_is_adamw_with_the_schedule():
  optimizer = _optimizer()
  assert isinstance(optimizer, tf_keras.optimizers.AdamW)
  schedule = optimizer._learning_rate  # pylint: disable=protected-access
  assert isinstance(schedule, optimization.WarmupLinearDecay)
  assert schedule.get_config() == {"peak": 1e-3, "total_steps": 100,
                                   "warmup_steps": 10}
  config = optimizer.get_config()
  assert (config["weight_decay"], config["beta_1"], config["beta_2"],
          config["epsilon"]) == (0.01, 0.9, 0.999, 1e-6)


@pytest.mark.parametrize("total_steps, warmup_ratio, warmup_steps", [
    (100, 0.0, 0), (100, 0.1, 10), (7, 0.1, 1), (1000, 0.06, 60)])
def test_create_optimizer_rounds_warmup_steps(total_steps, warmup_ratio,
                                              warmup_steps):
  optimizer = _optimizer(total_steps=total_steps, warmup_ratio=warmup_ratio)
  schedule = optimizer._learning_rate  # pylint: disable=protected-access
  assert schedule.warmup_steps == warmup_steps


def test_create_optimizer_rejects_empty_schedule():
  with pytest.raises(ValueError, match=r"^Invalid schedule: total_steps=0, "):
    _optimizer(total_steps=0)


@pytest.mark.parametrize("clip_norm, expected", [(1.0, 1.0), (0.25, 0.25),
                                                 (0.0, None)])
def test_create_optimizer_global_clipnorm(clip_norm, expected):
  optimizer = _optimizer(clip_norm=clip_norm)
  assert optimizer.global_clipnorm == expected
  assert optimizer.clipnorm is None and optimizer.clipvalue is None


class _Scale(tf_keras.layers.Layer):
  """A layer with one `gamma` weight, named like BERT's LayerNorm."""

  def build(self, input_shape):
    self.gamma = self.add_weight(
        "gamma", shape=(2,), initializer=tf_keras.initializers.Constant(3.0))

  def call(self, x):
    return x * self.gamma


def test_weight_decay_skips_layer_norm_and_bias():
  dense = tf_keras.layers.Dense(
      2, name="dense",
      kernel_initializer=tf_keras.initializers.Constant([[1.0, -2.0],
                                                         [4.0, 0.5]]),
      bias_initializer=tf_keras.initializers.Constant([1.0, -2.0]))
  norm = _Scale(name="LayerNorm")
  other_norm = _Scale(name="final_layer_norm")
  model = tf_keras.Sequential([tf_keras.Input((2,)), dense, norm, other_norm])
  names = sorted(w.name for w in model.trainable_weights)
  assert names == ["LayerNorm/gamma:0", "dense/bias:0", "dense/kernel:0",
                   "final_layer_norm/gamma:0"]
  before = {w.name: w.numpy() for w in model.trainable_weights}

  # No warmup, so the first step runs at the peak LR; zero gradients leave
  # Adam's own update at zero, so only the decoupled decay moves weights.
  optimizer = optimization.create_optimizer(
      learning_rate=0.1, total_steps=10, warmup_ratio=0.0, weight_decay=0.5,
      clip_norm=1.0)
  optimizer.apply_gradients(
      (tf.zeros_like(w), w) for w in model.trainable_weights)

  assert int(optimizer.iterations) == 1
  after = {w.name: w.numpy() for w in model.trainable_weights}
  kernel = before["dense/kernel:0"]
  expected = kernel - kernel * np.float32(0.5) * np.float32(0.1)
  np.testing.assert_array_equal(after["dense/kernel:0"], expected)
  np.testing.assert_array_equal(after["dense/kernel:0"],
                                np.float32([[0.95, -1.9], [3.8, 0.475]]))
  for name in ("dense/bias:0", "LayerNorm/gamma:0",
               "final_layer_norm/gamma:0"):
    np.testing.assert_array_equal(after[name], before[name])


def test_weight_decay_uses_the_scheduled_lr():
  kernel = tf.Variable([[2.0]], name="dense/kernel")
  # Warmup of 4 steps over 8: step 2 runs at half the peak.
  optimizer = optimization.create_optimizer(
      learning_rate=0.2, total_steps=8, warmup_ratio=0.5, weight_decay=0.5,
      clip_norm=0.0)
  optimizer.iterations.assign(2)
  optimizer.apply_gradients([(tf.zeros_like(kernel), kernel)])
  np.testing.assert_allclose(kernel.numpy(), [[2.0 - 2.0 * 0.5 * 0.1]],
                             rtol=1e-7)


def test_mixed_float16_wraps_in_loss_scale_optimizer():
  optimizer = _optimizer(mixed_float16=True)
  assert isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
  inner = optimizer.inner_optimizer
  assert isinstance(inner, tf_keras.optimizers.AdamW)
  assert inner.global_clipnorm == 1.0
  assert inner.get_config()["weight_decay"] == 0.01


def test_float32_is_not_wrapped():
  assert not isinstance(_optimizer(),
                        tf_keras.mixed_precision.LossScaleOptimizer)


# current_learning_rate


@pytest.mark.parametrize("mixed_float16", [False, True])
def test_current_learning_rate_follows_iterations(mixed_float16):
  optimizer = _optimizer(mixed_float16=mixed_float16)
  assert optimization.current_learning_rate(optimizer) == 0.0
  for step, expected in [(5, 5e-4), (10, 1e-3), (55, 5e-4), (100, 0.0)]:
    optimizer.iterations.assign(step)
    assert optimization.current_learning_rate(optimizer) == pytest.approx(
        expected, rel=1e-6, abs=1e-12)


def test_current_learning_rate_after_a_step_is_the_next_steps():
  variable = tf.Variable([1.0])
  optimizer = _optimizer()
  optimizer.iterations.assign(4)
  optimizer.apply_gradients([(tf.constant([0.5]), variable)])
  assert optimization.current_learning_rate(optimizer) == pytest.approx(5e-4)


def test_current_learning_rate_of_a_constant_rate():
  optimizer = tf_keras.optimizers.Adam(learning_rate=0.25)
  assert optimization.current_learning_rate(optimizer) == 0.25
  optimizer.iterations.assign(7)
  assert optimization.current_learning_rate(optimizer) == 0.25


# gradient_norm: the global norm before clipping, checked against an
# independent computation on the same batch.


def _tiny_qa_model():
  import transformers  # pylint: disable=import-outside-toplevel
  from conftest import tiny_bert_config  # pylint: disable=import-outside-toplevel

  config = transformers.BertConfig(**tiny_bert_config(
      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
  model = transformers.TFBertForQuestionAnswering(config)
  model(model.dummy_inputs, training=False)
  return model


def _qa_batch():
  # Repeated token ids (1 and 5 in every row) give the embedding gradients
  # duplicate rows: the dense norm is not the norm of the raw rows.
  ids = np.array([[2, 5, 7, 3, 5, 9, 11, 3], [2, 5, 8, 3, 6, 5, 12, 3],
                  [2, 5, 7, 3, 10, 5, 9, 3]], np.int32)
  inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids),
            "token_type_ids": np.array([[0] * 4 + [1] * 4] * 3, np.int32)}
  labels = {"start_positions": np.array([4, 5, 0], np.int32),
            "end_positions": np.array([5, 6, 0], np.int32)}
  return inputs, labels


@pytest.mark.parametrize("clip_norm", [0.0, 1e-3])
def test_gradient_norm_is_the_dense_global_norm_before_clipping(clip_norm):
  tf_keras.utils.set_random_seed(3)
  model = _tiny_qa_model()
  inputs, labels = _qa_batch()
  with tf.GradientTape() as tape:
    outputs = model({**inputs, **labels}, training=True)
    loss = tf.reduce_mean(outputs.loss)
  grads = tape.gradient(loss, model.trainable_weights)
  assert any(isinstance(g, tf.IndexedSlices) for g in grads)
  dense = [tf.convert_to_tensor(g) for g in grads]
  expected = float(tf.linalg.global_norm(dense))
  raw = float(tf.linalg.global_norm(grads))  # Keras' own: raw slice rows
  assert abs(raw - expected) > 1e-3 * expected

  optimizer = optimization.create_optimizer(
      learning_rate=1e-3, total_steps=10, warmup_ratio=0.0, weight_decay=0.0,
      clip_norm=clip_norm)
  model.compile(optimizer=optimizer)
  model.train_on_batch(inputs, labels)

  assert optimization.last_gradient_norm(optimizer) == pytest.approx(
      expected, rel=1e-5)
  # Reported before clipping: far above a clip of 1e-3.
  assert expected > 100 * 1e-3


def test_gradient_norm_is_not_checkpointed():
  optimizer = _optimizer()
  names = [v.name for v in optimizer.variables()]
  assert not any("gradient_norm" in name for name in names)
  checkpoint = tf.train.Checkpoint(optimizer=optimizer)
  optimizer.gradient_norm.assign(5.0)
  path = checkpoint.write(os.path.join(tempfile.mkdtemp(), "ckpt"))
  keys = [name for name, _ in tf.train.list_variables(path)]
  assert not any("gradient_norm" in key for key in keys)


@pytest.mark.parametrize("epsilon", [1e-6, 1e-8])
def test_create_optimizer_sets_epsilon(epsilon):
  assert _optimizer(epsilon=epsilon).epsilon == epsilon
