"""Training progress as one line every N steps, for logs where Keras' bar is unreadable."""

from __future__ import annotations

import datetime
import sys
import time
from typing import Callable, TextIO

import tf_keras

from tfqa import config as config_lib
from tfqa import errors
from tfqa.training import optimization


def is_interactive(stream: TextIO | None = None) -> bool:
  """Whether Keras' progress bar can redraw itself on `stream` (stdout).

  True on a terminal and in a notebook kernel; False for a file or a pipe,
  where the bar's redraws would pile up into one enormous line.
  """
  stream = sys.stdout if stream is None else stream
  isatty = getattr(stream, "isatty", None)
  return bool(isatty and isatty()) or "ipykernel" in sys.modules


class ProgressLines(tf_keras.callbacks.Callback):
  """Prints a line every `every_steps` global steps and at the last one.

  A line reads

    step 100/5532 (epoch 1/2): loss 1.2345, lr 4.50e-05, 85.3 windows/s,
    ETA 0:17:02

  (on one line) with the mean loss of the steps since the previous line, the
  learning rate of the next step, the windows per second since the previous
  line (saves included) and the time left at that rate.
  """

  def __init__(self, *, total_steps: int, steps_per_epoch: int,
               batch_size: int, every_steps: int = config_lib.PROGRESS_EVERY_STEPS,
               loss_divisor: int = 1, stream: TextIO | None = None,
               clock: Callable[[], float] = time.monotonic):
    """Checks and keeps the arguments.

    Args:
      total_steps: steps of the whole run.
      steps_per_epoch: steps of one epoch.
      batch_size: global batch size (windows per step).
      every_steps: steps between two lines.
      loss_divisor: what Keras' logged loss is divided by to get the step's
        mean loss (the number of replicas, see training).
      stream: where lines go (default: sys.stdout when the line is written).
      clock: seconds, for the rates.

    Raises:
      ValueError: a count that is not a positive integer.
    """
    super().__init__()
    for name, value in (("total_steps", total_steps),
                        ("steps_per_epoch", steps_per_epoch),
                        ("batch_size", batch_size),
                        ("every_steps", every_steps),
                        ("loss_divisor", loss_divisor)):
      if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise errors.ArgumentError(name, value, "Expected a positive integer.")
    self._total, self._per_epoch = total_steps, steps_per_epoch
    self._batch_size, self._every = batch_size, every_steps
    self._divisor, self._stream, self._clock = loss_divisor, stream, clock
    self._last_step = self._last_time = None
    self._losses = []

  def on_train_begin(self, logs=None):
    # Fit runs once per epoch; the clock runs across them (saves included).
    if self._last_time is None:
      self._last_time = self._clock()
      self._last_step = self._step()

  def on_train_batch_end(self, batch, logs=None):
    self._losses.append(float(logs["loss"]) / self._divisor)
    step = self._step()
    if step % self._every and step != self._total:
      return
    now = self._clock()
    seconds = max(now - self._last_time, 1e-9)
    steps_per_second = (step - self._last_step) / seconds
    eta = ((self._total - step) / steps_per_second
           if steps_per_second > 0 else 0.0)
    stream = sys.stdout if self._stream is None else self._stream
    stream.write(format_line(
        step=step, total_steps=self._total,
        epoch=(step - 1) // self._per_epoch + 1,
        epochs=-(-self._total // self._per_epoch),
        loss=sum(self._losses) / len(self._losses),
        learning_rate=optimization.current_learning_rate(
            self.model.optimizer),
        windows_per_second=steps_per_second * self._batch_size,
        eta_seconds=eta) + "\n")
    stream.flush()
    self._last_step, self._last_time, self._losses = step, now, []

  def _step(self) -> int:
    optimizer = self.model.optimizer
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return int(inner.iterations.numpy())


def format_line(*, step: int, total_steps: int, epoch: int, epochs: int,
                loss: float, learning_rate: float, windows_per_second: float,
                eta_seconds: float) -> str:
  """One progress line (see ProgressLines)."""
  eta = datetime.timedelta(seconds=round(eta_seconds))
  return (f"step {step}/{total_steps} (epoch {epoch}/{epochs}): "
          f"loss {loss:.4f}, lr {learning_rate:.2e}, "
          f"{windows_per_second:.1f} windows/s, ETA {eta}")
