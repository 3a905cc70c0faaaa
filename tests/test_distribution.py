"""Tests for tfqa.distribution: strategies that exist on a CPU-only machine."""

import pytest
import tensorflow as tf

from tfqa import distribution


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


def test_unknown_strategy_is_refused():
  with pytest.raises(ValueError, match="Received: 'horovod'"):
    distribution.make_strategy("horovod")


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
