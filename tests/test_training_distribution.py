"""Tests for tfqa.training.distribution: strategies that exist on a CPU-only machine."""

import pytest
import tensorflow as tf

from tfqa import errors
from tfqa.training import distribution


def test_default_is_the_current_strategy():
  assert distribution.make_strategy("default") is tf.distribute.get_strategy()


def test_one_device_uses_cpu_without_gpus():
  strategy = distribution.make_strategy("one_device")
  assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
  if not tf.config.list_logical_devices("GPU"):
    assert strategy.extended.worker_devices == ("/job:localhost/replica:0/"
                                                "task:0/device:CPU:0",)


def test_mirrored_falls_back_to_cpu():
  strategy = distribution.make_strategy("mirrored")
  assert isinstance(strategy, tf.distribute.MirroredStrategy)
  gpus = tf.config.list_logical_devices("GPU")
  # One replica per GPU; with none, the CPU alone.
  assert strategy.num_replicas_in_sync == max(len(gpus), 1)
  if not gpus:
    assert strategy.extended.worker_devices == ("/job:localhost/replica:0/"
                                                "task:0/device:CPU:0",)


def test_unknown_strategy_is_refused_naming_the_argument():
  with pytest.raises(errors.ArgumentError) as caught:
    distribution.make_strategy("horovod")
  expected = (" Received: {}='horovod'. Expected one of default, one_device, "
              "mirrored, multi_worker_mirrored, tpu.")
  assert str(caught.value) == (
      "Invalid value for argument `distribution_strategy`." +
      expected.format("distribution_strategy"))
  assert caught.value.worded(
      {"distribution_strategy": "--distribution_strategy"}) == (
          "Invalid value for flag --distribution_strategy." +
          expected.format("--distribution_strategy"))


@pytest.mark.parametrize("name", ["float32", "mixed_bfloat16",
                                  "mixed_float16"])
def test_explicit_policies_pass_through(name):
  assert distribution.mixed_precision_policy(
      name, tf.distribute.get_strategy()) == name


def test_auto_policy_follows_the_device():
  expected = ("mixed_float16" if tf.config.list_logical_devices("GPU")
              else "float32")
  assert distribution.mixed_precision_policy(
      "auto", tf.distribute.get_strategy()) == expected


def test_single_process_is_chief_with_one_worker():
  strategy = tf.distribute.get_strategy()
  assert distribution.is_chief(strategy)
  assert distribution.num_workers(strategy) == 1
  assert distribution.task(strategy) == (None, 0)


def test_device_line_names_the_devices():
  assert distribution.device_line(1, []) == "1 replica on CPU: no GPU found"
  assert distribution.device_line(1, ["Tesla T4"]) == (
      "1 replica on GPU:0 (Tesla T4)")
  assert distribution.device_line(2, ["NVIDIA A100", "NVIDIA A100"]) == (
      "2 replicas on GPU:0 (NVIDIA A100), GPU:1 (NVIDIA A100)")
  # The default strategy trains on the first GPU only.
  assert distribution.device_line(1, ["L4", "L4"]) == "1 replica on GPU:0 (L4)"
  assert distribution.device_line(8, [], tpu=True) == "8 replicas on TPU"


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")),
                    reason="checks the CPU-only path")
def test_on_this_cpu_machine_the_header_says_cpu_and_require_gpu_refuses():
  strategy = distribution.make_strategy("default")
  assert distribution.describe_devices(strategy) == (
      "1 replica on CPU: no GPU found")
  distribution.check_gpu(strategy, require_gpu=False)
  with pytest.raises(ValueError, match=(
      r"^Invalid value for argument `require_gpu`. Received: "
      r"require_gpu=True but TensorFlow sees no GPU. Expected a GPU: in Colab "
      r"choose Runtime > Change runtime type > a GPU, then run all cells "
      r"again; .* or pass require_gpu=False to train on the CPU.$")) as caught:
    distribution.check_gpu(strategy, require_gpu=True)
  assert caught.value.worded({"require_gpu": "--require_gpu"}).endswith(
      "or pass --norequire_gpu to train on the CPU.")
