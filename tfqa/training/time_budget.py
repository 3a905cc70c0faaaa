"""--time_budget: the whole epochs that fit a wall-clock budget, evaluations included, predicted from a few steps (and evaluations) timed on a throwaway copy of the model."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Sequence

from absl import logging
import numpy as np
import tf_keras

from tfqa import config as config_lib
from tfqa import errors
from tfqa.config import durations

# Steps timed before a budgeted run: the first (tracing) and the rest, whose
# time per computed token (padding included) predicts the run's steps.
CALIBRATION_STEPS = 5
# The most epochs a budget gives (a tiny data set fits thousands in an hour).
MAX_EPOCHS = 1000
# Eval examples timed twice over before a budgeted run that evaluates: a
# first set (tracing included), then as many others, whose time per example
# predicts an evaluation of the whole eval set.
EVAL_CALIBRATION_EXAMPLES = 32


@dataclasses.dataclass(frozen=True)
class EvalCost:
  """What a run's evaluations are predicted to take."""

  tracing_seconds: float  # once, at the first evaluation
  seconds_per_evaluation: float  # the whole eval set
  examples: int  # in the eval set
  every_steps: int  # the run's eval_every_steps (0: the final one only)

  def evaluations(self, steps: int) -> int:
    """Evaluations of a run of `steps` steps: every `every_steps` before the
    last step (callbacks.StepEnd), then the final one."""
    return (steps - 1) // self.every_steps + 1 if self.every_steps else 1

  def seconds(self, steps: int) -> float:
    return (self.tracing_seconds +
            self.evaluations(steps) * self.seconds_per_evaluation)


@dataclasses.dataclass(frozen=True)
class Calibration:
  """What a few training steps (and evaluations) on a throwaway model took."""

  build_seconds: float  # building and compiling the model
  first_step_seconds: float  # tracing included
  seconds_per_token: float  # over the steps after the first
  windows_per_second: float  # the same steps' rate, for messages
  steps: int
  evaluation: EvalCost | None = None  # None: the run does not evaluate


class TimeBudgetError(errors.ArgumentError):
  """A --time_budget that no whole epoch fits, or one a run cannot use."""


def keep_recorded_epochs(run_config: config_lib.RunConfig,
                         saved: config_lib.RunConfig | None
                         ) -> config_lib.RunConfig:
  """`run_config` with the epochs its budget chose when the run started.

  A resumed run keeps the count recorded in run_config.json (measuring
  again would change the LR schedule mid-run). A different budget is left
  for rundir.reconcile to refuse.
  """
  budget = run_config.train.time_budget
  if not budget or saved is None or saved.train.time_budget != budget:
    return run_config
  return _with_epochs(run_config, saved.train.num_train_epochs)


def fit_epochs(run_config: config_lib.RunConfig, *,
               epoch_tokens: Callable[[int], np.ndarray],
               spent_seconds: float,
               calibration: Calibration) -> config_lib.RunConfig:
  """`run_config` with the most whole epochs its budget fits.

  The predicted time of E epochs: what was spent so far, the model built
  again, its first step, then every other step's computed tokens at the
  calibrated time per token, and the evaluations of a run of that many
  steps. At most MAX_EPOCHS, and no more than max_steps needs.

  Args:
    run_config: the run; its train.time_budget is set.
    epoch_tokens: epoch -> tokens (padding included) of each of its steps.
    spent_seconds: time since the run was called.
    calibration: what `calibrate` measured.

  Raises:
    TimeBudgetError: not one epoch fits.
  """
  train = run_config.train
  budget = durations.seconds(train.time_budget)
  per_epoch = len(epoch_tokens(0))
  cap = MAX_EPOCHS if not train.max_steps else min(
      MAX_EPOCHS, -(-train.max_steps // per_epoch))

  def epoch_seconds(epoch):
    tokens = epoch_tokens(epoch)
    if train.max_steps:
      tokens = tokens[:max(0, train.max_steps - epoch * per_epoch)]
    # The first step's time is measured with its tracing, apart.
    computed = tokens[1:].sum() if epoch == 0 else tokens.sum()
    return computed * calibration.seconds_per_token

  evaluation = calibration.evaluation

  def run_steps(epochs):
    return min(epochs * per_epoch, train.max_steps or epochs * per_epoch)

  def evaluation_seconds(epochs):
    return evaluation.seconds(run_steps(epochs)) if evaluation else 0.0

  trained = (spent_seconds + calibration.build_seconds +
             calibration.first_step_seconds)
  epochs = 0
  while epochs < cap:
    seconds = epoch_seconds(epochs)
    if trained + seconds + evaluation_seconds(epochs + 1) > budget:
      break
    trained += seconds
    epochs += 1
  if epochs < 1:
    one_epoch = trained + seconds + evaluation_seconds(1)
    raise TimeBudgetError(
        "time_budget", train.time_budget,
        f"Expected at least {durations.describe(math.ceil(one_epoch))}: "
        f"one epoch ({per_epoch} steps of {train.train_batch_size} "
        f"windows) is predicted to take that, "
        f"{_included(evaluation, run_steps(1))} (measured "
        f"{calibration.windows_per_second:.3g} windows/s over "
        f"{calibration.steps} steps). Pass a longer budget, or "
        "{num_train_epochs} or {max_steps} without one.",
        refers_to=["num_train_epochs", "max_steps"])
  logging.info(
      "Time budget %s: %d epoch(s) of %d steps fit%s; the run is predicted "
      "to end %s after the start%s (measured on %d steps: model built in "
      "%.1f s, first step %.1f s, then %.3g windows/s%s).",
      train.time_budget, epochs, per_epoch, _capped_by(epochs, cap, train),
      durations.describe(trained + evaluation_seconds(epochs)),
      f", {_evaluations(evaluation, run_steps(epochs))} included"
      if evaluation else "",
      calibration.steps,
      calibration.build_seconds, calibration.first_step_seconds,
      calibration.windows_per_second, _evaluation_rate(evaluation))
  return _with_epochs(run_config, epochs)


def _evaluations(evaluation: EvalCost, steps: int) -> str:
  count = evaluation.evaluations(steps)
  return (f"its {count} evaluation{'s' if count > 1 else ''} of "
          f"{evaluation.examples} questions")


def _included(evaluation: EvalCost | None, steps: int) -> str:
  if evaluation is None:
    return "setup and tracing included"
  return f"setup, tracing and {_evaluations(evaluation, steps)} included"


def _evaluation_rate(evaluation: EvalCost | None) -> str:
  if evaluation is None:
    return ""
  return (f"; an evaluation {evaluation.seconds_per_evaluation:.1f} s, its "
          f"first tracing {evaluation.tracing_seconds:.1f} s more")


def _capped_by(epochs: int, cap: int, train: config_lib.TrainConfig) -> str:
  """Why the run got no more epochs, when the budget is not the reason."""
  if epochs < cap:
    return ""
  if train.max_steps and cap < MAX_EPOCHS:
    return f", all that max_steps={train.max_steps} needs"
  return ", the most a budget gives"


def check_single_worker(train: config_lib.TrainConfig, workers: int) -> None:
  """Raises TimeBudgetError for a budget on a multi-worker run, whose
  workers would each measure, and choose, their own epoch count."""
  if train.time_budget and workers > 1:
    raise TimeBudgetError(
        "time_budget", train.time_budget,
        f"Expected no budget on a {workers}-worker run (each worker would "
        f"measure its own speed and choose its own epochs): pass "
        "{num_train_epochs}.", refers_to=["num_train_epochs"])


def calibrate(build: Callable[[], object],
              train_steps: Callable[[object, list], None], *,
              batch_size: int, step_tokens: np.ndarray,
              time_evaluation: Callable[[object], EvalCost] | None = None
              ) -> Calibration:
  """Times building a model and the first training steps on it.

  Args:
    build: returns a fresh training state (discarded afterwards).
    train_steps: (state, callbacks) trains that state with those Keras
      callbacks until one stops it.
    batch_size: windows per step.
    step_tokens: tokens (padding included) of each step to time, at least 2.
    time_evaluation: state -> its EvalCost, for a run that evaluates.
  """
  steps = len(step_tokens)
  started = time.perf_counter()
  state = build()
  built = time.perf_counter()
  timer = _StepTimer(steps)
  train_steps(state, [timer])
  evaluation = time_evaluation(state) if time_evaluation else None
  del state
  # The run's model gets the names (and so the saved weights' names) it
  # would have had without this one.
  tf_keras.backend.clear_session()
  ends = timer.ends
  timed = ends[-1] - ends[0]
  return Calibration(
      build_seconds=built - started, first_step_seconds=ends[0] - built,
      seconds_per_token=timed / step_tokens[1:len(ends)].sum(),
      windows_per_second=(len(ends) - 1) * batch_size / timed,
      steps=len(ends), evaluation=evaluation)


def calibrate_evaluation(evaluate: Callable[[Sequence], object],
                         examples: Sequence, *,
                         computed_tokens: Callable[[Sequence], int],
                         every_steps: int, seed: int,
                         clock: Callable[[], float] = time.perf_counter
                         ) -> EvalCost:
  """Times `evaluate` on two sets of eval examples drawn by `seed`.

  The first set's time holds the tracing; the second's time per computed
  token (padding included), times the tokens of the whole eval set, predicts
  one evaluation. Tokens, not questions: a few random questions make
  batches padded far wider than the whole set's length-sorted ones (on the
  shared sample, 256 against 178 tokens a window: a prediction 1.45x too
  long). A set of one example is timed twice.

  Args:
    evaluate: evaluates a list of examples.
    examples: the run's eval examples.
    computed_tokens: examples -> tokens, padding included, that `evaluate`
      has the model compute for them (run_evaluation.computed_tokens).
    every_steps: the run's eval_every_steps.
    seed: draws the two sets.
    clock: seconds, for tests.
  """
  order = np.random.default_rng(seed).permutation(len(examples))
  size = min(EVAL_CALIBRATION_EXAMPLES, max(1, len(examples) // 2))
  first = [examples[i] for i in order[:size]]
  second = [examples[i] for i in order[size:2 * size]] or first
  started = clock()
  evaluate(first)
  warm = clock()
  evaluate(second)
  per_token = (clock() - warm) / computed_tokens(second)
  return EvalCost(
      tracing_seconds=max(0.0, warm - started -
                          per_token * computed_tokens(first)),
      seconds_per_evaluation=per_token * computed_tokens(examples),
      examples=len(examples), every_steps=every_steps)


class _StepTimer(tf_keras.callbacks.Callback):
  """Records when each step ends; stops fit after `steps`."""

  def __init__(self, steps: int):
    super().__init__()
    self._steps = steps
    self.ends: list[float] = []

  def on_train_batch_end(self, batch, logs=None):
    self.ends.append(time.perf_counter())
    if len(self.ends) >= self._steps:
      self.model.stop_training = True


def _with_epochs(run_config: config_lib.RunConfig,
                 epochs: int) -> config_lib.RunConfig:
  return dataclasses.replace(run_config, train=dataclasses.replace(
      run_config.train, num_train_epochs=epochs))
