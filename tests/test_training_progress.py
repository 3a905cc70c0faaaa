"""Tests for tfqa.training.progress: one progress line every N steps when stdout is not a terminal."""

import io
import types

import pytest
import tensorflow as tf

from tfqa.training import progress


class _FakeClock:

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def _fit_like(callback, losses, *, seconds_per_step, clock):
  """Drives the callback as Keras fit would, one optimizer step per loss."""
  optimizer = types.SimpleNamespace(iterations=tf.Variable(0, dtype=tf.int64),
                                    learning_rate=2e-5)
  callback.set_model(types.SimpleNamespace(optimizer=optimizer))
  callback.on_train_begin()
  for batch, loss in enumerate(losses):
    clock.now += seconds_per_step
    optimizer.iterations.assign_add(1)
    callback.on_train_batch_end(batch, {"loss": loss})


def test_a_line_every_n_steps_and_at_the_last():
  out, clock = io.StringIO(), _FakeClock()
  callback = progress.ProgressLines(total_steps=5, steps_per_epoch=2,
                                    batch_size=4, every_steps=2,
                                    loss_divisor=2, stream=out, clock=clock)
  _fit_like(callback, [2.0, 4.0, 6.0, 6.0, 1.0], seconds_per_step=2.0,
            clock=clock)
  # Mean loss of the steps since the last line, divided by the replicas;
  # 2 steps x 4 windows in 4 s; 3 steps left at 0.5 step/s.
  assert out.getvalue().splitlines() == [
      "step 2/5 (epoch 1/3): loss 1.5000, lr 2.00e-05, 2.0 windows/s, "
      "ETA 0:00:06",
      "step 4/5 (epoch 2/3): loss 3.0000, lr 2.00e-05, 2.0 windows/s, "
      "ETA 0:00:02",
      "step 5/5 (epoch 3/3): loss 0.5000, lr 2.00e-05, 2.0 windows/s, "
      "ETA 0:00:00",
  ]


def test_format_line_long_eta():
  assert progress.format_line(
      step=120, total_steps=5532, epoch=1, epochs=2, loss=1.23456,
      learning_rate=4.5e-5, windows_per_second=85.34,
      eta_seconds=3723.4) == ("step 120/5532 (epoch 1/2): loss 1.2346, "
                              "lr 4.50e-05, 85.3 windows/s, ETA 1:02:03")


@pytest.mark.parametrize("name,value", [
    ("every_steps", 0), ("total_steps", -1), ("batch_size", 2.0),
    ("loss_divisor", True)])
def test_invalid_counts_are_refused(name, value):
  kwargs = dict(total_steps=5, steps_per_epoch=2, batch_size=4)
  kwargs[name] = value
  with pytest.raises(ValueError, match=rf"Received: {name}={value!r}. "
                                       rf"Expected a positive integer"):
    progress.ProgressLines(**kwargs)


class _Stream(io.StringIO):

  def __init__(self, tty):
    super().__init__()
    self._tty = tty

  def isatty(self):
    return self._tty


def test_is_interactive_on_a_terminal_only(monkeypatch):
  monkeypatch.delitem(__import__("sys").modules, "ipykernel", raising=False)
  assert progress.is_interactive(_Stream(True))
  assert not progress.is_interactive(_Stream(False))
  assert not progress.is_interactive(object())  # no isatty at all
