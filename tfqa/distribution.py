"""tf.distribute strategy from the run's `distribution_strategy` setting."""

from __future__ import annotations

import tensorflow as tf


def make_strategy(name: str, *, tpu: str = "") -> tf.distribute.Strategy:
  """Creates the named tf.distribute strategy.

  Args:
    name: "default", "one_device", "mirrored", "multi_worker_mirrored" or
      "tpu".
    tpu: TPU address for "tpu" ("" finds a local or Colab TPU).

  Returns:
    The strategy; build the model and optimizer under its scope().

  Raises:
    ValueError: unknown name.
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "one_device":
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else
                                           "/cpu:0")
  if name == "mirrored":
    # With no GPU this mirrors onto the CPU alone.
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker_mirrored":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == "tpu":
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  raise ValueError(
      f"Invalid value for argument `distribution_strategy`. Received: "
      f"{name!r}. Expected one of default, one_device, mirrored, "
      f"multi_worker_mirrored, tpu.")
