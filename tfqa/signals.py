"""SIGTERM/SIGINT as a stop request: the capture installed at the edge, the exception that reports a stop (TF-free)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from typing import Callable

# The signals a preemptible VM (SIGTERM) and a user (Ctrl-C, a notebook's
# interrupt button: SIGINT) send.
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_code(signum: int) -> int:
  """The shell's status for a process ended by `signum` (143, 130)."""
  return 128 + signum


def exit_now(code: int) -> None:
  """Ends a stopped command-line process at once with `code`.

  Everything the run needs is on disk by then (the checkpoint and its state
  file, the fsynced step log); what is left is the interpreter's teardown of
  TensorFlow, which took 15-35 s on a loaded machine, more than a
  preemptible VM's notice. Python's own buffers are flushed first.
  """
  sys.stdout.flush()
  sys.stderr.flush()
  logging.shutdown()
  os._exit(code)  # pylint: disable=protected-access


class SignalReceived(KeyboardInterrupt):
  """Raised by a SignalCapture where a signal may stop work at once."""

  def __init__(self, signum: int):
    self.signal_name = signal.Signals(signum).name
    self.exit_code = exit_code(signum)
    super().__init__(f"Interrupted by {self.signal_name}")


class TrainingInterrupted(KeyboardInterrupt):
  """Training stopped on a signal after saving its progress.

  A KeyboardInterrupt, as Ctrl-C and a notebook's interrupt are: `except
  Exception` does not swallow it. `str()` is the one line to show the user.

  Attributes:
    signal_name: "SIGTERM" or "SIGINT".
    step: the global step saved (None: stopped before training started).
    total_steps: steps of the whole run.
    checkpoint: the checkpoint's name ("ckpt-N"), or None.
    exit_code: the status a command-line tool exits with (143, 130).
    peer: True on a worker that stopped because another one got the signal.
  """

  def __init__(self, signum: int, *, step: int | None = None,
               total_steps: int | None = None, peer: bool = False):
    self.signal_name = signal.Signals(signum).name
    self.step, self.total_steps, self.peer = step, total_steps, peer
    self.exit_code = exit_code(signum)
    self.checkpoint = None if step is None else f"ckpt-{step}"
    by = self.signal_name + (" to another worker" if peer else "")
    if step is None:
      message = (f"Interrupted by {by} before training started; nothing to "
                 f"save; run the same command to start again.")
    else:
      message = (f"Interrupted by {by} at step {step} of {total_steps}; "
                 f"saved {self.checkpoint}; run the same command to resume.")
    super().__init__(message)


class SignalCapture:
  """Catches SIGTERM and SIGINT for the `with` block; restores handlers after.

  A signal is recorded. It is raised as SignalReceived at once only inside
  an `interruptible()` region (work that can be redone and writes nothing:
  setup before training, an evaluation's forward passes); elsewhere (a
  train step, a checkpoint save, writing outputs) it waits until the work
  reaches a point where it can stop (see StopOnSignal). A second signal
  while stopping is recorded and does not interrupt the save under way.
  """

  def __init__(self, signals=SIGNALS):
    self._signals = tuple(signals)
    self._previous = {}
    self.signum: int | None = None
    self._received = threading.Event()  # For threads waiting on a signal.
    self._modes = [False]  # A stack: does a signal raise at once?
    # Set by the training loop (preemption.StopOnSignal): saves the current
    # step and returns the TrainingInterrupted that reports it.
    self.stop: Callable[[], TrainingInterrupted] | None = None

  def __enter__(self):
    global _ACTIVE
    if threading.current_thread() is not threading.main_thread():
      raise RuntimeError("SignalCapture must be entered in the main thread "
                         "(Python delivers signals there).")
    for signum in self._signals:
      self._previous[signum] = signal.signal(signum, self._handle)
    self._outer, _ACTIVE = _ACTIVE, self
    return self

  def __exit__(self, *exc_info):
    global _ACTIVE
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    _ACTIVE = self._outer
    return False

  def reinstall(self) -> None:
    """Takes the signals back from native code that replaced the handlers.

    (TensorFlow's multi-worker coordination service installs its own
    SIGTERM handler in C++ when the strategy is created.)
    """
    for signum in self._signals:
      signal.signal(signum, self._handle)

  @property
  def received(self) -> bool:
    return self.signum is not None

  def wait(self, timeout: float) -> bool:
    """Blocks a thread until a signal is received or `timeout` seconds pass;
    True if one was."""
    return self._received.wait(timeout)

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    if self.signum is not None:
      print(f"Received {signal.Signals(signum).name} again: finishing the "
            f"checkpoint save first (SIGKILL stops at once, losing the steps "
            f"since the last checkpoint).", file=sys.stderr, flush=True)
      return
    self.signum = signum
    self._received.set()
    if self._modes[-1]:
      raise SignalReceived(signum)
    print(f"Received {signal.Signals(signum).name}: stopping after the "
          f"current step, with a checkpoint.", file=sys.stderr, flush=True)

  @contextlib.contextmanager
  def mode(self, *, interruptible: bool):
    """A region where a signal does (or does not) raise at once."""
    if interruptible and self.received:
      raise SignalReceived(self.signum)
    self._modes.append(interruptible)
    try:
      yield
    finally:
      self._modes.pop()

  def defer_from_now(self) -> None:
    """Signals no longer raise at once outside interruptible() regions."""
    self._modes[:] = [False]


_ACTIVE: SignalCapture | None = None


def active() -> SignalCapture | None:
  """The SignalCapture of this process's innermost `with`, if any."""
  return _ACTIVE


def interruptible():
  """A region a signal may stop at once (a no-op without a capture)."""
  if _ACTIVE is None:
    return contextlib.nullcontext()
  return _ACTIVE.mode(interruptible=True)


def deferred():
  """A region a signal must not cut short (a no-op without a capture)."""
  if _ACTIVE is None:
    return contextlib.nullcontext()
  return _ACTIVE.mode(interruptible=False)


def stops_on_signals(train_fn: Callable) -> Callable:
  """Runs `train_fn` under a SignalCapture; a signal ends it as TrainingInterrupted.

  Until training starts (preemption.StopOnSignal.on_train_begin) a signal stops the
  call at once; then at the next step end, after a checkpoint. Without a
  main thread, or inside an outer capture, `train_fn` runs as it is.
  """

  @functools.wraps(train_fn)
  def wrapper(*args, **kwargs):
    if (_ACTIVE is not None or
        threading.current_thread() is not threading.main_thread()):
      return train_fn(*args, **kwargs)
    with SignalCapture() as capture:
      try:
        with capture.mode(interruptible=True):
          return train_fn(*args, **kwargs)
      except SignalReceived:
        raise (capture.stop() if capture.stop else
               TrainingInterrupted(capture.signum)) from None

  return wrapper
