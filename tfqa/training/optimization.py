"""AdamW with linear warmup and linear decay to zero, weight decay off for LayerNorm and bias."""

from __future__ import annotations

import tensorflow as tf
import tf_keras

# Weights whose names contain these are not decayed.
NO_DECAY_NAME_PARTS = ("LayerNorm", "layer_norm", "bias")


@tf_keras.utils.register_keras_serializable(package="tfqa")
class WarmupLinearDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
  """Rises linearly from 0 to `peak` over `warmup_steps`, then falls to 0.

  lr(step) = peak * step / warmup_steps                  for step < warmup
           = peak * (total - step) / (total - warmup)    afterwards, >= 0
  `step` is the optimizer's iteration count, so a restored optimizer resumes
  the schedule where it stopped.
  """

  def __init__(self, peak: float, total_steps: int, warmup_steps: int):
    super().__init__()
    if total_steps <= 0 or not 0 <= warmup_steps <= total_steps:
      raise ValueError(
          f"Invalid schedule: total_steps={total_steps}, warmup_steps="
          f"{warmup_steps}. Expected 0 <= warmup_steps <= total_steps and "
          f"total_steps > 0.")
    self.peak = peak
    self.total_steps = total_steps
    self.warmup_steps = warmup_steps

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    warmup = tf.cast(self.warmup_steps, tf.float32)
    total = tf.cast(self.total_steps, tf.float32)
    rising = step / tf.maximum(warmup, 1.0)
    falling = (total - step) / tf.maximum(total - warmup, 1.0)
    fraction = tf.where(step < warmup, rising, falling)
    return self.peak * tf.clip_by_value(fraction, 0.0, 1.0)

  def get_config(self):
    return {"peak": self.peak, "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps}


@tf_keras.utils.register_keras_serializable(package="tfqa")
class AdamW(tf_keras.optimizers.AdamW):
  """AdamW whose global-norm clipping sees the true gradient norm.

  Embedding gradients arrive as IndexedSlices with one row per token
  occurrence; Keras measures the global norm on those raw rows (and only
  merges duplicates afterwards), so the clip depended on how a batch was
  split across replicas. Merging duplicate rows first makes the norm that of
  the dense gradient, identical on 1 or N replicas.

  `gradient_norm` holds the global norm of the last step's gradients before
  clipping (what TensorBoard shows as `gradient_norm`). It is not part of
  checkpoints: it is a diagnostic, rewritten at every step.
  """

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self._create_gradient_norm()

  @tf.__internal__.tracking.no_automatic_dependency_tracking
  def _create_gradient_norm(self):
    # Created with the optimizer (under its strategy's scope); every replica
    # sees the same all-reduced gradients, so the first one's value is it.
    self.gradient_norm = tf.Variable(
        0.0, trainable=False, dtype=tf.float32, name="gradient_norm",
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

  def _clip_gradients(self, grads):
    grads = self._deduplicate_sparse_grad(grads)
    self.gradient_norm.assign(tf.cast(tf.linalg.global_norm(
        [g for g in grads if g is not None]), tf.float32))
    return super()._clip_gradients(grads)


def create_optimizer(*, learning_rate: float, total_steps: int,
                     warmup_ratio: float, weight_decay: float,
                     clip_norm: float, epsilon: float = 1e-6,
                     mixed_float16: bool = False):
  """AdamW (Keras 2, for transformers models) with the tfqa schedule.

  Args:
    learning_rate: peak learning rate.
    total_steps: steps of the whole run (the LR reaches 0 there).
    warmup_ratio: share of total_steps spent warming up.
    weight_decay: decoupled weight decay, skipped for NO_DECAY_NAME_PARTS.
    clip_norm: global gradient norm clip; 0 disables clipping.
    epsilon: Adam's epsilon.
    mixed_float16: wrap in a LossScaleOptimizer (float16 training).

  Returns:
    A `tf_keras` optimizer.
  """
  schedule = WarmupLinearDecay(learning_rate, total_steps,
                               int(round(warmup_ratio * total_steps)))
  optimizer = AdamW(
      learning_rate=schedule, weight_decay=weight_decay, beta_1=0.9,
      beta_2=0.999, epsilon=epsilon,
      global_clipnorm=clip_norm if clip_norm > 0 else None)
  optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAME_PARTS))
  if mixed_float16:
    optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
  return optimizer


def last_gradient_norm(optimizer) -> float:
  """Global norm of the last step's gradients before clipping."""
  inner = getattr(optimizer, "inner_optimizer", optimizer)
  return float(inner.gradient_norm.numpy())


def current_learning_rate(optimizer) -> float:
  """The learning rate the optimizer applies at its next step."""
  inner = getattr(optimizer, "inner_optimizer", optimizer)
  # With a schedule, `learning_rate` is the value computed at the start of the
  # last step (not after a restore); ask the schedule itself.
  lr = getattr(inner, "_learning_rate", None)
  if isinstance(lr, tf_keras.optimizers.schedules.LearningRateSchedule):
    return float(lr(inner.iterations))
  return float(tf.convert_to_tensor(inner.learning_rate))
