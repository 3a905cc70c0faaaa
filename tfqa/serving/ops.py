"""Small tensor helpers shared by the serving graph's windowing and decoding."""

from __future__ import annotations

import math

import tensorflow as tf


def log_softmax_where(logits: tf.Tensor, allowed: tf.Tensor) -> tf.Tensor:
  """Row-wise log-softmax over the `allowed` positions; -inf elsewhere."""
  values = tf.where(allowed, logits, tf.constant(-math.inf, logits.dtype))
  return values - tf.reduce_logsumexp(values, axis=1, keepdims=True)


def column(x: tf.Tensor) -> tf.Tensor:
  """[n] -> [n, 1], to compare per-window values with positions."""
  return x[:, tf.newaxis]


def gather_or_zero(values: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
  """values[indices] where indices are in range, else 0 (no out-of-range)."""
  padded = tf.concat([values, tf.zeros([1], values.dtype)], 0)
  inside = (indices >= 0) & (indices < tf.size(values))
  return tf.gather(padded, tf.where(inside, indices, tf.size(values)))
