"""Gradient accumulation: a Keras train step that averages the gradients of K micro-batches before one update."""

from __future__ import annotations

import functools
from typing import Callable

import tensorflow as tf


def install(model, *, steps: int,
            after_micro_batch: Callable[[int, int], None] | None = None
            ) -> None:
  """Makes `model.fit` take each optimizer step over `steps` micro-batches.

  Each replica's share of a global batch is cut into `steps` equal slices,
  run one after another (a slice's forward pass waits for the previous
  slice's gradients, so only one slice's activations are alive at a time);
  their gradients are averaged and applied once. As each slice's loss is
  its own mean, the average is the gradient of the whole batch's mean loss:
  the update equals one of the unsplit batch up to float rounding. The
  logged loss is the mean of the slices' losses.

  Args:
    model: a compiled transformers TF QA model (trained on its own loss).
    steps: micro-batches per optimizer step (> 1).
    after_micro_batch: fn(step, index), called (inside the train step) after
      micro-batch `index` (0-based) of global step `step` (1-based) has its
      gradients; a seam for tests that kill a run there.
  """
  model.train_step = functools.partial(_train_step, model, steps=steps,
                                       after_micro_batch=after_micro_batch)


def _train_step(model, data, *, steps, after_micro_batch):
  x, y = data
  inputs = {**x, **y}  # The model computes its loss from the labels.
  size = tf.shape(inputs["input_ids"])[0] // steps
  optimizer = model.optimizer
  variables = model.trainable_variables
  total = None
  done = []  # What the next micro-batch waits for.
  for index in range(steps):
    with tf.control_dependencies(done):
      part = {name: tf.identity(value[index * size:(index + 1) * size])
              for name, value in inputs.items()}
    with tf.GradientTape() as tape:
      outputs = model(part, training=True)
      loss = model.compiled_loss(outputs.loss, outputs.loss, None,
                                 regularization_losses=model.losses)
    grads = [g for g, _ in optimizer.compute_gradients(loss, variables,
                                                       tape=tape)]
    total = grads if total is None else [_add(a, b)
                                         for a, b in zip(total, grads)]
    done = _tensors(total)
    if after_micro_batch is not None:
      with tf.control_dependencies(done):
        marker = tf.py_function(
            lambda step, i: (after_micro_batch(int(step), int(i)), 0)[1],
            [optimizer.iterations + 1, index], tf.int32)
      done = done + [marker]
  with tf.control_dependencies(done):
    averaged = [_scale(g, 1.0 / steps) for g in total]
  optimizer.apply_gradients(zip(averaged, variables))
  return model.get_metrics_result()


def _add(a, b):
  if a is None:
    return b
  if isinstance(a, tf.IndexedSlices):
    # Embedding rows: concatenated; the optimizer merges duplicates.
    return tf.IndexedSlices(tf.concat([a.values, b.values], 0),
                            tf.concat([a.indices, b.indices], 0),
                            a.dense_shape)
  return a + b


def _scale(grad, factor):
  if grad is None:
    return None
  if isinstance(grad, tf.IndexedSlices):
    return tf.IndexedSlices(grad.values * tf.cast(factor, grad.values.dtype),
                            grad.indices, grad.dense_shape)
  return grad * tf.cast(factor, grad.dtype)


def _tensors(grads):
  found = []
  for grad in grads:
    if isinstance(grad, tf.IndexedSlices):
      found += [grad.values, grad.indices]
    elif grad is not None:
      found.append(grad)
  return found
