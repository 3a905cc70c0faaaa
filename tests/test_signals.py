"""Tests for tfqa.signals: what a SIGTERM/SIGINT does inside and outside interruptible regions."""

import os
import signal
import threading

import pytest

from tfqa import signals


def _send(signum):
  os.kill(os.getpid(), signum)


def test_a_signal_in_a_deferred_region_is_recorded_not_raised(capsys):
  with signals.SignalCapture() as capture:
    assert signals.active() is capture
    _send(signal.SIGTERM)
    assert capture.received and capture.signum == signal.SIGTERM
  assert signals.active() is None
  assert ("Received SIGTERM: stopping after the current step, with a "
          "checkpoint.") in capsys.readouterr().err


def test_a_thread_waiting_for_a_signal_wakes_when_it_lands():
  # (The multi-worker preemption handler's watcher thread waits this way.)
  woke = []
  with signals.SignalCapture() as capture:
    assert capture.wait(timeout=0.01) is False
    waiter = threading.Thread(target=lambda: woke.append(capture.wait(60)))
    waiter.start()
    _send(signal.SIGTERM)
    waiter.join(timeout=10)
    assert woke == [True] and not waiter.is_alive()


def test_handlers_are_restored_after_the_block():
  before = signal.getsignal(signal.SIGINT)
  with signals.SignalCapture():
    assert signal.getsignal(signal.SIGINT) is not before
  assert signal.getsignal(signal.SIGINT) is before


def test_an_interruptible_region_raises_at_once():
  with signals.SignalCapture():
    with pytest.raises(signals.SignalReceived):
      with signals.interruptible():
        _send(signal.SIGINT)
        pytest.fail("the signal did not interrupt the region")


def test_entering_an_interruptible_region_after_a_signal_raises():
  with signals.SignalCapture() as capture:
    _send(signal.SIGTERM)
    with pytest.raises(signals.SignalReceived):
      with signals.interruptible():
        pytest.fail("entered although a signal was pending")
    assert capture.signum == signal.SIGTERM


def test_a_deferred_region_inside_an_interruptible_one_is_not_cut(capsys):
  with signals.SignalCapture() as capture:
    with capture.mode(interruptible=True):
      with signals.deferred():
        _send(signal.SIGTERM)
        _send(signal.SIGINT)  # a second signal during the save
        finished = True
  assert finished and capture.signum == signal.SIGTERM
  assert "Received SIGINT again: finishing the checkpoint save first" in (
      capsys.readouterr().err)


def test_without_a_capture_the_regions_do_nothing():
  with signals.interruptible(), signals.deferred():
    assert signals.active() is None


def test_training_interrupted_reports_the_step_and_exit_code():
  stop = signals.TrainingInterrupted(signal.SIGTERM, step=12, total_steps=40)
  assert str(stop) == ("Interrupted by SIGTERM at step 12 of 40; saved "
                       "ckpt-12; run the same command to resume.")
  assert stop.exit_code == 143 and stop.checkpoint == "ckpt-12"
  assert isinstance(stop, KeyboardInterrupt)
  early = signals.TrainingInterrupted(signal.SIGINT)
  assert early.exit_code == 130 and early.checkpoint is None
  assert str(early) == ("Interrupted by SIGINT before training started; "
                        "nothing to save; run the same command to start "
                        "again.")
  peer = signals.TrainingInterrupted(signal.SIGTERM, step=3, total_steps=8,
                                     peer=True)
  assert str(peer).startswith("Interrupted by SIGTERM to another worker at "
                              "step 3 of 8;")


def test_stops_on_signals_turns_an_early_signal_into_training_interrupted():
  @signals.stops_on_signals
  def train():
    _send(signal.SIGINT)
    pytest.fail("not interrupted")

  with pytest.raises(signals.TrainingInterrupted,
                     match=r"^Interrupted by SIGINT before training started"):
    train()
  assert signals.active() is None


def test_stops_on_signals_asks_the_training_loop_to_save():
  saved = []

  @signals.stops_on_signals
  def train():
    capture = signals.active()
    capture.stop = lambda: saved.append(7) or signals.TrainingInterrupted(
        capture.signum, step=7, total_steps=9)
    capture.defer_from_now()
    _send(signal.SIGTERM)  # recorded: the step in flight goes on
    with signals.interruptible():  # e.g. an evaluation: stops at once
      pytest.fail("not interrupted")

  with pytest.raises(signals.TrainingInterrupted,
                     match=r"^Interrupted by SIGTERM at step 7 of 9; saved "
                     r"ckpt-7;"):
    train()
  assert saved == [7]


def test_capture_outside_the_main_thread_is_refused():
  errors = []

  def enter():
    try:
      with signals.SignalCapture():
        pass
    except RuntimeError as e:
      errors.append(str(e))

  thread = threading.Thread(target=enter)
  thread.start()
  thread.join()
  assert errors == ["SignalCapture must be entered in the main thread "
                    "(Python delivers signals there)."]


def test_stops_on_signals_outside_the_main_thread_runs_plainly():
  results = []
  thread = threading.Thread(
      target=lambda: results.append(signals.stops_on_signals(
          lambda: signals.active())()))
  thread.start()
  thread.join()
  assert results == [None]


def test_reinstall_takes_the_signals_back():
  with signals.SignalCapture() as capture:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as native code might
    capture.reinstall()
    _send(signal.SIGTERM)
    assert capture.signum == signal.SIGTERM
