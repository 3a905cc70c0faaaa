"""Tests for tfqa.training.time_budget and tfqa_train --time_budget: the epochs a budget fits, kept on resume, the run they make."""

import dataclasses
import json
import logging
import os
import re
import signal

import numpy as np
import pytest

from tfqa import config
from tfqa.training import time_budget
from tfqa.training import trainer

from conftest import assert_same_checkpoint, run_python, tiny_train_flags

# Model built in 2 s, first step 10 s, then 2**-10 s a token: 0.5 s for a
# step of 4 windows 128 wide.
CALIBRATION = time_budget.Calibration(
    build_seconds=2.0, first_step_seconds=10.0, seconds_per_token=2.0**-10,
    windows_per_second=8.0, steps=5)


def _same_epochs(epoch):
  return np.full(10, 4 * 128)


def _run_config(**train):
  return config.RunConfig(
      model=config.ModelConfig(model="m"),
      data=config.DataConfig(train_file="t.json"),
      train=config.TrainConfig(train_batch_size=4, **train))


def _fit(budget, epoch_tokens=_same_epochs, calibration=CALIBRATION,
         **train):
  return time_budget.fit_epochs(
      _run_config(time_budget=budget, **train), epoch_tokens=epoch_tokens,
      spent_seconds=8.0, calibration=calibration).train.num_train_epochs


def _evaluating(every_steps):
  # Each evaluation of the 50 questions 3 s, the first tracing 1 s more.
  return dataclasses.replace(CALIBRATION, evaluation=time_budget.EvalCost(
      tracing_seconds=1.0, seconds_per_evaluation=3.0, examples=50,
      every_steps=every_steps))


def test_fit_epochs_takes_the_most_whole_epochs_that_fit():
  # 8 s spent, the build and the first step: 20 s; the first epoch's other
  # 9 steps 4.5 s, each further epoch 5 s: 8 epochs end at 59.5 s.
  assert _fit("60s", num_train_epochs=2) == 8
  assert _fit("59.5s") == 8
  assert _fit("59.4s") == 7
  fitted = time_budget.fit_epochs(
      _run_config(time_budget="60s"), epoch_tokens=_same_epochs,
      spent_seconds=8.0, calibration=CALIBRATION)
  assert fitted.train.time_budget == "60s"


def test_fit_epochs_predicts_each_epoch_from_its_own_batches():
  # Epoch e's batches are (e + 1) x as wide: 4.5, 10, 15, 20 s; 3 fit in 60.
  assert _fit("60s", lambda epoch: np.full(10, 4 * 128 * (epoch + 1))) == 3
  assert _fit("69.5s", lambda epoch: np.full(10, 4 * 128 * (epoch + 1))) == 4


def test_fit_epochs_stops_at_what_max_steps_needs_and_at_the_cap():
  assert _fit("1h", max_steps=25) == 3
  assert _fit("1000h") == time_budget.MAX_EPOCHS
  # Only the 25 steps are predicted: 20 + 24 x 0.5 = 32 s; 33 s fits them.
  assert _fit("32s", max_steps=25) == 3
  assert _fit("31.9s", max_steps=25) == 2


def test_fit_epochs_refuses_a_budget_no_epoch_fits():
  # One epoch: 20 + 4.5 = 24.5 s.
  with pytest.raises(time_budget.TimeBudgetError) as raised:
    _fit("24s")
  assert str(raised.value) == (
      "Invalid value for argument `time_budget`. Received: "
      "time_budget='24s'. Expected at least 25.0s: one epoch (10 steps of 4 "
      "windows) is predicted to take that, setup and tracing included "
      "(measured 8 windows/s over 5 steps). Pass a longer budget, or "
      "num_train_epochs or max_steps without one.")
  assert _fit("24.5s") == 1


def test_a_run_evaluates_every_n_steps_before_its_last_then_once_more():
  cost = _evaluating(4).evaluation
  # Steps 4 and 8 during a run of 10 steps, then the final evaluation; a
  # step that is the last is evaluated once, by the final evaluation.
  assert [cost.evaluations(steps) for steps in (1, 4, 5, 8, 9, 10)] == [
      1, 1, 2, 2, 3, 3]
  assert cost.seconds(10) == 1.0 + 3 * 3.0
  assert _evaluating(0).evaluation.evaluations(1000) == 1


def test_fit_epochs_leaves_time_for_the_runs_evaluations():
  # Without evaluations 8 epochs (80 steps) end at 59.5 s. The final
  # evaluation alone (4 s) leaves 7 (54.5 + 4 s); evaluating every 20 steps
  # too, 4 evaluations end 7 epochs at 54.5 + 13 s, 6 epochs (3 evaluations
  # of 60 steps) at 49.5 + 10 = 59.5 s.
  assert _fit("60s", calibration=_evaluating(0)) == 7
  assert _fit("58.5s", calibration=_evaluating(0)) == 7
  assert _fit("58.4s", calibration=_evaluating(0)) == 6
  assert _fit("60s", calibration=_evaluating(20)) == 6
  assert _fit("67.5s", calibration=_evaluating(20)) == 7
  # Only max_steps' evaluations count: 25 steps, evaluated at 20 and 25.
  assert _fit("39s", calibration=_evaluating(20), max_steps=25) == 3


def test_the_budget_log_and_refusal_count_the_evaluations(caplog):
  # absl's own logger: another test of the process may have left its level
  # at WARNING.
  with caplog.at_level(logging.INFO, logger="absl"):
    _fit("60s", calibration=_evaluating(20))
  assert ("the run is predicted to end 59.5s after the start, its 3 "
          "evaluations of 50 questions included (measured on 5 steps: model "
          "built in 2.0 s, first step 10.0 s, then 8 windows/s; an "
          "evaluation 3.0 s, its first tracing 1.0 s more).") in caplog.text
  # One epoch with its final evaluation: 24.5 + 4 s, rounded up.
  with pytest.raises(time_budget.TimeBudgetError,
                     match=r"Expected at least 29.0s: one epoch \(10 steps of 4 "
                           r"windows\) is predicted to take that, setup, "
                           r"tracing and its 1 evaluation of 50 questions "
                           r"included \(measured"):
    _fit("28s", calibration=_evaluating(0))
  assert _fit("28.5s", calibration=_evaluating(0)) == 1


def test_calibrate_evaluation_times_a_first_set_then_a_warm_one():
  examples = [f"q{i}" for i in range(100)]
  # Question i computes 100 + i tokens: all of them 14,950, 149.5 a question.
  tokens = lambda chosen: sum(100 + int(q[1:]) for q in chosen)
  clock, evaluated = [0.0], []

  def evaluate(chosen):
    # Tracing (5 s) on the first call, then 0.01 s a computed token.
    clock[0] += (5.0 if not evaluated else 0.0) + 0.01 * tokens(chosen)
    evaluated.append(list(chosen))

  cost = time_budget.calibrate_evaluation(
      evaluate, examples, computed_tokens=tokens, every_steps=7, seed=3,
      clock=lambda: clock[0])
  assert cost == time_budget.EvalCost(
      tracing_seconds=pytest.approx(5.0), seconds_per_evaluation=(
          pytest.approx(149.5)), examples=100, every_steps=7)
  first, second = evaluated
  assert len(first) == len(second) == time_budget.EVAL_CALIBRATION_EXAMPLES
  # By question it would have predicted the second set's mean, not 149.5.
  assert tokens(second) / len(second) != pytest.approx(149.5, abs=1.0)
  assert not set(first) & set(second)
  assert set(first) | set(second) <= set(examples)
  # Drawn by the seed: the same seed, the same sets.
  again = []
  time_budget.calibrate_evaluation(again.append, examples,
                                   computed_tokens=tokens, every_steps=7,
                                   seed=3, clock=lambda: 0.0)
  assert again == evaluated
  # A single question is timed twice.
  once = []
  time_budget.calibrate_evaluation(once.append, ["q0"], computed_tokens=tokens,
                                   every_steps=0, seed=0, clock=lambda: 0.0)
  assert once == [["q0"], ["q0"]]


def test_a_resumed_run_keeps_the_epochs_its_budget_chose():
  saved = _run_config(time_budget="1h", num_train_epochs=7)
  assert time_budget.keep_recorded_epochs(
      _run_config(time_budget="1h"), saved) == saved
  # Another budget, no budget, or nothing saved: unchanged (rundir.reconcile
  # refuses a changed budget).
  for run_config, recorded in [(_run_config(time_budget="2h"), saved),
                               (_run_config(), saved),
                               (_run_config(time_budget="1h"), None)]:
    assert time_budget.keep_recorded_epochs(run_config, recorded) == run_config


def test_a_budget_is_refused_on_several_workers_only():
  time_budget.check_single_worker(config.TrainConfig(time_budget="1h"), 1)
  time_budget.check_single_worker(config.TrainConfig(), 2)
  with pytest.raises(time_budget.TimeBudgetError,
                     match=r"Expected no budget on a 2-worker run"):
    time_budget.check_single_worker(config.TrainConfig(time_budget="1h"), 2)


def _recorded_epochs(model_dir):
  with open(os.path.join(model_dir, "run_config.json")) as f:
    return json.load(f)["train"]["num_train_epochs"]


@pytest.mark.slow
def test_budgeted_run_killed_and_resumed_equals_the_run_at_its_epochs(
    tiny_files, tmp_path):
  # 4 steps per epoch; a tiny model fits thousands of epochs in 10 minutes,
  # but max_steps=10 needs 3: the budget gives those, as the reference has.
  flags = tiny_train_flags(tiny_files, save_every_steps=3, max_steps=10,
                           num_train_epochs=None)
  budgeted, reference = str(tmp_path / "budgeted"), str(tmp_path / "ref")
  killed = run_python(["-m", "tests.helpers.killable_train",
                       "--kill_at_step=7", f"--model_dir={budgeted}",
                       "--time_budget=10m", *flags],
                      exit_status=-signal.SIGKILL)
  assert ("Time budget 10m: 3 epoch(s) of 4 steps fit, all that max_steps=10 "
          "needs; the run is predicted to end ") in killed.stderr
  # The run evaluates (an eval file, no --eval_every_steps): its final
  # evaluation was timed on the throwaway copy and is in the prediction.
  assert re.search(r"after the start, its 1 evaluation of \d+ questions "
                   r"included \(.*; an evaluation \d+\.\d s, its first "
                   r"tracing \d+\.\d s more\)\.", killed.stderr), killed.stderr
  assert _recorded_epochs(budgeted) == 3
  # The same command resumes with the recorded epochs: no new measurement.
  resumed = run_python(["-m", "tfqa.cli.train", f"--model_dir={budgeted}",
                        "--time_budget=10m", *flags])
  assert "Restored" in resumed.stderr
  assert "Time budget" not in resumed.stderr
  assert _recorded_epochs(budgeted) == 3
  run_python(["-m", "tfqa.cli.train", f"--model_dir={reference}",
              "--num_train_epochs=3", *flags])
  assert_same_checkpoint(budgeted, reference, 10)
  assert trainer.read_train_log(budgeted) == trainer.read_train_log(reference)
  # Another budget on resume would re-span the LR schedule: refused.
  changed = run_python(["-m", "tfqa.cli.train", f"--model_dir={budgeted}",
                        "--time_budget=20m", *flags], expect_fail=True)
  assert changed.returncode == 1
  assert "{time_budget}" not in changed.stderr
  assert "--time_budget: this run '20m', saved '10m'" in changed.stderr


@pytest.mark.slow
def test_a_budget_no_epoch_fits_is_refused_in_one_line(tiny_files, tmp_path):
  model_dir = tmp_path / "run"
  proc = run_python(["-m", "tfqa.cli.train", f"--model_dir={model_dir}",
                     "--time_budget=0.1s",
                     *tiny_train_flags(tiny_files, num_train_epochs=None)],
                    expect_fail=True)
  assert proc.returncode == 1
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith(
      "tfqa_train: error: Invalid value for flag --time_budget. "
      "Received: --time_budget='0.1s'. Expected at least "), lines[0]
  assert lines[0].endswith(
      "Pass a longer budget, or --num_train_epochs or --max_steps without "
      "one."), lines[0]
  assert "Traceback" not in proc.stderr and proc.stdout == ""
  assert not (model_dir / "run_config.json").exists()
  assert not (model_dir / "checkpoints").exists()
