"""Preemption campaign: SIGTERM/SIGINT a --deterministic tiny training run at random moments, resume, compare.

  python tools/preemption_campaign.py --signals=24 --seed=0 --workdir=/tmp/pre
  python tools/preemption_campaign.py --small      # what CI runs (2 signals)

Trains a reference run once, uninterrupted, with checkpoints far apart
(--save_every_steps=1000) and gradient accumulation (2 micro-batches a
step). Then, in rounds, trains the same run in a fresh directory, sending
itself SIGTERM or SIGINT at a planned moment (after a random step, between
the micro-batches of a random step, inside an evaluation during training,
inside the end evaluation, at a random time) and re-running the same
command each time, with no cleanup in between. Each interrupted process
must exit within 30 s of the signal with 143 (SIGTERM) or 130 (SIGINT) and
the line "Interrupted by SIG... at step N of M; saved ckpt-N; ...", its
newest checkpoint must be ckpt-N and its step log must end at step N (no
step lost). At the end of a round the final checkpoint must be
bit-identical to the reference's, and the step log and every evaluation's
outputs equal. Prints the counts; exits 1 on any failure.
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys
import time

import campaign_common as common  # pylint: disable=import-error

# 14 windows, batch 4 (2 micro-batches of 2): 4 steps per epoch; 4 epochs =
# 16 steps; evaluations during training at 5, 10, 15; no periodic save
# before the end (every 1000 steps).
EPOCHS = 4
EVAL_EVERY = 5
TOTAL_STEPS = 16
EXIT_SECONDS = 30
_EVALS = [s for s in range(1, TOTAL_STEPS) if s % EVAL_EVERY == 0]
# The evaluation during training comes first: from step 0 it always has one
# ahead of it. "step" signals land in the first third of what is left, so
# that later plans of the round still have steps to land in.
KINDS = ("mid_eval", "micro", "step", "timer", "mid_eval", "step", "eval")
# The n-th plan of the campaign sends SIGNALS[n % 2]: any two plans in a row
# cover both.
SIGNALS = ("SIGINT", "SIGTERM")
EVAL_POINTS = ("start", "after_logits", "mid_write")
# The campaign's size flags and what --small sets them to.
SIZE_FLAGS = {"signals": 24, "per_round": 7}
SMALL = {"signals": 2, "per_round": 2}
SMALL_HELP = (
    "CI mode: 2 signals in one round, SIGINT inside an evaluation during "
    "training and SIGTERM between micro-batches (both stop at a step's end, as "
    "a signal after a step does; tests/test_training_preemption.py sends one "
    "there). Signals inside the end evaluation: the full mode.")
_LINE = re.compile(r"Interrupted by (SIG[A-Z]+) (?:at step (\d+) of (\d+); "
                   r"saved ckpt-(\d+)|before training started); run the same "
                   r"command to (?:resume|start again)\.")


def _flags(files, model_dir):
  return common.train_flags(files, model_dir, num_train_epochs=EPOCHS,
                            save_every_steps=1000,
                            eval_every_steps=EVAL_EVERY,
                            gradient_accumulation_steps=2)


def _plan(kind, signal, rng, progress, fit_seconds):
  """A `signal` plan for a process that starts at step `progress`."""
  plan = {"signal": signal}
  steps_left = max(1, TOTAL_STEPS - progress)
  if kind == "step":
    return {**plan, "kill": "step",
            "n": rng.randint(1, max(1, steps_left // 3))}
  if kind == "micro":
    return {**plan, "kill": "micro",
            "n": rng.randint(1, max(1, steps_left // 3)), "index": 0}
  if kind == "mid_eval":
    evals_left = sum(s > progress for s in _EVALS)
    if evals_left:
      return {**plan, "kill": "mid_eval", "n": rng.randint(1, evals_left),
              "point": rng.choice(EVAL_POINTS)}
    kind = "eval"
  if kind == "timer":
    share = steps_left / TOTAL_STEPS
    return {**plan, "kill": "timer",
            "seconds": round(rng.uniform(0.0, fit_seconds * share), 3)}
  return {**plan, "kill": "eval", "point": rng.choice(EVAL_POINTS)}


def _place(event):
  """Where a process is once it logged `event` (None: where it was)."""
  if event[0] == "fit_begin":
    return "inside the first step (tracing)"
  if event[:2] == ("kill", "micro"):
    return "between micro-batches"
  return common.place_after(event, TOTAL_STEPS,
                            end_evaluation="inside the end evaluation")


def _where(events):
  """Where the signal landed, from the chaos log."""
  return common.where_interrupted(events, _place)


def _signal_time(log):
  with open(log, encoding="utf-8") as f:
    for line in f:
      if line.startswith("signal "):
        return float(line.split()[-1])
  return None


def _logged_steps(model_dir):
  path = os.path.join(model_dir, "train_log.jsonl")
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [json.loads(line)["step"] for line in f if line.strip()]


def _latest_checkpoint(model_dir):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
  return int(latest.rsplit("-", 1)[1]) if latest else None


class Campaign(common.Campaign):
  """Counts and failures of a campaign, where its signals landed, exit times."""

  def __init__(self):
    super().__init__()
    self.landed = collections.Counter()
    self.exit_seconds = []


def _check_interrupted(campaign, result, plan, log, model_dir, label):
  """One interrupted process: exit status, line, time, no step lost."""
  sent = _signal_time(log)
  expected_rc = {"SIGTERM": 143, "SIGINT": 130}[plan["signal"]]
  if result.returncode != expected_rc:
    campaign.fail(f"{label}: exit {result.returncode}, expected "
                  f"{expected_rc}: {result.stderr[-1500:]}")
    return
  seconds = result.ended - sent
  campaign.exit_seconds.append(seconds)
  if seconds > EXIT_SECONDS:
    campaign.fail(f"{label}: exited {seconds:.1f} s after the signal")
  lines = [line for line in result.stderr.splitlines() if _LINE.search(line)]
  if len(lines) != 1:
    campaign.fail(f"{label}: expected one 'Interrupted by' line, got "
                  f"{lines}: {result.stderr[-1500:]}")
    return
  match = _LINE.search(lines[0])
  if match.group(1) != plan["signal"]:
    campaign.fail(f"{label}: the line names {match.group(1)}")
  logged = _logged_steps(model_dir)
  latest = _latest_checkpoint(model_dir)
  if match.group(2) is None:
    # Stopped while loading, before this process trained: what an earlier
    # process logged is all in the newest checkpoint.
    if (logged[-1] if logged else None) != latest:
      campaign.fail(f"{label}: 'before training started' with the step log "
                    f"at {logged[-1:]} and the newest checkpoint {latest}")
    else:
      campaign.counts["interruptions that lost no step"] += 1
    return
  step = int(match.group(2))
  if int(match.group(3)) != TOTAL_STEPS or int(match.group(4)) != step:
    campaign.fail(f"{label}: line {lines[0]!r}")
  if latest != step or not logged or logged[-1] != step:
    campaign.fail(f"{label}: the line says step {step}, the newest "
                  f"checkpoint is {latest}, the step log ends at "
                  f"{logged[-1:] or 'nothing'}: a step was lost")
  else:
    campaign.counts["interruptions that lost no step"] += 1


def _round(campaign, reference, index, per_round):
  model_dir, args = common.fresh_round(reference, index, _flags)
  first = index * per_round
  kinds = [KINDS[(first + i) % len(KINDS)] for i in range(per_round)]
  for number, kind in enumerate(kinds, 1):
    log = os.path.join(reference.workdir, f"round{index}-{number}.log")
    logged = _logged_steps(model_dir)
    plan = _plan(kind, SIGNALS[(first + number - 1) % len(SIGNALS)],
                 reference.rng, logged[-1] if logged else 0,
                 reference.fit_seconds)
    result = common.run(args, plan=plan, chaos_log=log)
    result.ended = time.monotonic()
    events = common.read_events(log)
    label = f"round {index} run {number} {json.dumps(plan)}"
    if _signal_time(log) is None:
      if result.returncode != 0:
        campaign.fail_exit(label, result)
        return
      campaign.counts["runs that finished before their signal"] += 1
      print(f"  {label}: finished before the signal", flush=True)
      continue
    campaign.counts["signals"] += 1
    campaign.counts[f"signals: {plan['signal']}"] += 1
    campaign.landed[_where(events)] += 1
    _check_interrupted(campaign, result, plan, log, model_dir, label)
    print(f"  {label}: {_where(events)}, rc {result.returncode}, "
          f"{campaign.exit_seconds[-1] if campaign.exit_seconds else 0:.1f} "
          f"s to exit", flush=True)
    if campaign.failures:
      return
  campaign.counts["resumes"] += len(kinds)
  if common.finish_round(campaign, reference, index, args):
    _compare(campaign, reference.model_dir, model_dir, f"round {index}")


def _compare(campaign, reference, model_dir, label):
  common.compare_final_checkpoint(campaign, reference, model_dir,
                                  TOTAL_STEPS, label)
  differing = common.differing_outputs(reference, model_dir, _EVALS)
  if differing:
    campaign.fail(f"{label}: {differing[0]} differs from the uninterrupted "
                  f"run")
    return
  campaign.counts["runs with equal step log and eval outputs"] += 1


def run_campaign(*, workdir: str, signals: int, per_round: int,
                 seed: int) -> Campaign:
  """Runs the campaign; returns its counts and failures."""
  campaign = Campaign()
  return common.run_rounds(
      campaign, lambda reference, index, missing: _round(
          campaign, reference, index, min(per_round, missing)),
      workdir=workdir, seed=seed, flags=_flags, counted="signals",
      wanted=signals)


def report(campaign: Campaign) -> int:
  """Prints the counts, where the signals landed, exit times and failures; the exit status."""
  tables = [("where the signals landed", sorted(campaign.landed.items()))]
  if campaign.exit_seconds:
    seconds = sorted(campaign.exit_seconds)
    tables.append(("seconds from signal to exit", [
        ("max", f"{seconds[-1]:.1f}"),
        ("median", f"{seconds[len(seconds) // 2]:.1f}")]))
  return common.print_report(campaign, tables)


def main(argv=None):
  args = common.parse_flags(
      argv, __doc__, workdir="/tmp/tfqa_preemption_campaign",
      counts=SIZE_FLAGS, small=SMALL, small_help=SMALL_HELP)
  return report(run_campaign(workdir=args.workdir, signals=args.signals,
                             per_round=args.per_round, seed=args.seed))


if __name__ == "__main__":
  sys.exit(main())
