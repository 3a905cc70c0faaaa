"""tf.distribute strategy from the run's `distribution_strategy` setting."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tfqa import errors


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
  raise errors.ArgumentError(
      "distribution_strategy", name, "Expected one of default, one_device, "
      "mirrored, multi_worker_mirrored, tpu.")


def task(strategy: tf.distribute.Strategy) -> tuple[str | None, int]:
  """(task type, task id) of this process in a multi-worker cluster."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return None, 0
  return resolver.task_type, int(resolver.task_id or 0)


def num_workers(strategy: tf.distribute.Strategy) -> int:
  """Processes taking part in training (1 unless multi-worker)."""
  return strategy.extended._num_workers if hasattr(  # pylint: disable=protected-access
      strategy.extended, "_num_workers") else 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the run's files (checkpoints, logs, config).

  The chief is the "chief" task, or worker 0 when the cluster has no chief
  (TF_CONFIG's usual two-worker setup). Single-process runs are chief.
  """
  task_type, task_id = task(strategy)
  if task_type is None:
    return True
  if task_type == "chief":
    return True
  cluster = strategy.cluster_resolver.cluster_spec().as_dict()
  return task_type == "worker" and task_id == 0 and "chief" not in cluster


def distribute_train_dataset(strategy: tf.distribute.Strategy, make_dataset):
  """Feeds each replica its slice of every global batch.

  Args:
    strategy: the run's strategy.
    make_dataset: fn(*, num_replicas, local_replicas) -> tf.data.Dataset,
      as `input_pipeline.train_dataset` with its other arguments bound.

  Returns:
    A dataset for Keras fit: the plain one with a single replica, else a
    distributed dataset built per input pipeline. Data are split by hand
    (no auto-sharding): every worker plans the same global batches from the
    seed and takes its replicas' slices, so files need no sharding.
  """
  replicas = strategy.num_replicas_in_sync
  if replicas == 1:
    return make_dataset(num_replicas=1, local_replicas=(0,))

  def dataset_fn(context):
    per_pipeline = replicas // context.num_input_pipelines
    first = context.input_pipeline_id * per_pipeline
    dataset = make_dataset(num_replicas=replicas,
                           local_replicas=range(first, first + per_pipeline))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF)
    return dataset.with_options(options)

  return strategy.distribute_datasets_from_function(dataset_fn)


def mixed_precision_policy(name: str, strategy: tf.distribute.Strategy) -> str:
  """Resolves "auto" to the Keras policy that pays on the strategy's devices.

  bfloat16 on TPUs (native, no loss scaling), float16 on GPUs (tensor cores;
  the optimizer then gets a LossScaleOptimizer), float32 on CPUs (most CPUs
  have no fast bfloat16 matmul).
  """
  if name != "auto":
    return name
  if isinstance(strategy, tf.distribute.TPUStrategy):
    return "mixed_bfloat16"
  if tf.config.list_logical_devices("GPU"):
    return "mixed_float16"
  return "float32"


def device_line(replicas: int, gpu_names: Sequence[str], *,
                tpu: bool = False) -> str:
  """Where the replicas run, for the run header.

  "1 replica on GPU:0 (NVIDIA A100-SXM4-40GB)", "2 replicas on GPU:0 (...),
  GPU:1 (...)", "8 replicas on TPU", "1 replica on CPU: no GPU found".
  """
  noun = "replica" if replicas == 1 else "replicas"
  if tpu:
    return f"{replicas} {noun} on TPU"
  if not gpu_names:
    return f"{replicas} {noun} on CPU: no GPU found"
  used = gpu_names[:max(1, replicas)]
  return f"{replicas} {noun} on " + ", ".join(
      f"GPU:{i} ({name})" for i, name in enumerate(used))


def gpu_names() -> list[str]:
  """The names of this process's GPUs (e.g. "Tesla T4"), in device order."""
  names = []
  for gpu in tf.config.list_physical_devices("GPU"):
    details = tf.config.experimental.get_device_details(gpu)
    names.append(details.get("device_name", gpu.name))
  return names


def describe_devices(strategy: tf.distribute.Strategy) -> str:
  """device_line for this process and strategy."""
  return device_line(strategy.num_replicas_in_sync, gpu_names(),
                     tpu=isinstance(strategy, tf.distribute.TPUStrategy))


def check_gpu(strategy: tf.distribute.Strategy, *, require_gpu: bool) -> None:
  """Refuses a run that requires a GPU on a machine where TF sees none.

  Raises:
    ValueError: require_gpu and no GPU (a TPU strategy counts as one).
  """
  if not require_gpu or isinstance(strategy, tf.distribute.TPUStrategy):
    return
  if not tf.config.list_physical_devices("GPU"):
    raise errors.ArgumentError(
        "require_gpu", require_gpu, note=" but TensorFlow sees no GPU",
        expected="Expected a GPU: in Colab choose Runtime "
        "> Change runtime type > a GPU, then run all cells again; elsewhere "
        "install tensorflow[and-cuda] (see BUILD.md) on a machine with an "
        "NVIDIA driver, or pass {require_gpu:false} to train on the CPU.",
        refers_to=["require_gpu"])
