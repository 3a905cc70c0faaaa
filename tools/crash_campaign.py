"""Crash campaign: SIGKILL a --deterministic tiny training run at random moments, resume, compare.

  python tools/crash_campaign.py --kills=24 --seed=0 --workdir=/tmp/crash
  python tools/crash_campaign.py --small          # what CI runs (2 kills)

Trains a reference run once, uninterrupted. Then, in rounds, trains the same
run in a fresh directory, killing it with SIGKILL at a planned moment (after
a random step, a random number of ms into a checkpoint save, between a
save's files and its `checkpoint` state file, at a random time, during an
evaluation during training (--eval_every_steps) or at its end) and
re-running the same command each time, with no cleanup in between. At the
end of a round the final checkpoint must be bit-identical to the
reference's, the per-step log, every evaluation's outputs and the best
checkpoint (--keep_best=f1) equal, and no resume may redo more steps than
the save interval or skip any.
Prints the counts; exits 1 on any failure.
"""

from __future__ import annotations

import collections
import json
import os
import sys

import campaign_common as common  # pylint: disable=import-error

# 14 windows, batch 4: 4 steps per epoch; 4 epochs = 16 steps; saves every 3
# steps, at each epoch end and at each evaluation during training (every 5
# steps: 5, 10, 15; the end one is at 16).
EPOCHS = 4
SAVE_EVERY = 3
EVAL_EVERY = 5
TOTAL_STEPS = 16
_EVALS = [s for s in range(1, TOTAL_STEPS) if s % EVAL_EVERY == 0]
_SAVES = sorted({s for s in range(1, TOTAL_STEPS + 1)
                 if s % SAVE_EVERY == 0 or s % 4 == 0} | set(_EVALS))
TRAINING_KINDS = ("in_save", "step", "before_state", "timer")
EVAL_POINTS = ("start", "after_logits", "mid_write")
# The campaign's size flags and what --small sets them to.
SIZE_FLAGS = {"kills": 24, "kills_per_round": 6}
SMALL = {"kills": 3, "kills_per_round": 3}
SMALL_HELP = ("CI mode: 3 kills (inside an evaluation during training, inside "
              "a save, inside the end evaluation) in one round.")


def _flags(files, model_dir):
  return common.train_flags(files, model_dir, num_train_epochs=EPOCHS,
                            save_every_steps=SAVE_EVERY,
                            eval_every_steps=EVAL_EVERY, keep_best="f1")


def _plan(kind, rng, progress, fit_seconds):
  """A kill plan that will fire given `progress` (the last saved step)."""
  steps_left = max(1, TOTAL_STEPS - progress)
  saves_left = max(1, sum(s > progress for s in _SAVES))
  if kind == "step":
    return {"kill": "step", "n": rng.randint(1, steps_left)}
  if kind == "in_save":
    return {"kill": "in_save", "n": rng.randint(1, saves_left),
            "ms": round(rng.uniform(0.0, 40.0), 2)}
  if kind == "before_state":
    return {"kill": "before_state", "n": rng.randint(1, saves_left)}
  if kind == "mid_eval":
    evals_left = max(1, sum(s > progress for s in _EVALS))
    return {"kill": "mid_eval", "n": rng.randint(1, evals_left),
            "point": rng.choice(EVAL_POINTS)}
  if kind == "timer":
    share = steps_left / TOTAL_STEPS
    return {"kill": "timer",
            "seconds": round(rng.uniform(0.0, fit_seconds * share), 3)}
  return {"kill": "eval", "point": rng.choice(EVAL_POINTS)}


def _where(events):
  """Where the last kill of a process landed, from its chaos log events."""
  return common.where_interrupted(events, lambda event: common.place_after(
      event, TOTAL_STEPS, end_evaluation="inside evaluation"))


class Campaign(common.Campaign):
  """Counts and failures of a campaign, where its kills landed, steps redone."""

  def __init__(self):
    super().__init__()
    self.landed = collections.Counter()
    self.redone = []


def _check_resume(campaign, previous, current, label):
  """The resumed process starts at or before where the killed one was."""
  # A step's mark comes after its evaluation and save (TrainingHooks
  # .after_step); an evaluation or save of step N begun proves that step N
  # ran (a save killed between its files and its state file leaves a
  # complete checkpoint the resume may start from).
  last_step = max((int(e[1]) for e in previous
                   if e[0] in ("step", "save_begin", "eval_begin")),
                  default=None)
  begins = [int(e[1]) for e in current if e[0] == "fit_begin"]
  if last_step is None or not begins:
    return
  restored = begins[0]
  redo = last_step - restored
  campaign.redone.append(redo)
  if redo < 0:
    campaign.fail(f"{label}: resumed at step {restored}, after the last "
                  f"step run ({last_step}): steps skipped")
  elif redo > SAVE_EVERY:
    campaign.fail(f"{label}: resumed at step {restored} but step "
                  f"{last_step} had run: {redo} steps redone > save "
                  f"interval {SAVE_EVERY}")


def _round(campaign, reference, index, kills):
  model_dir, args = common.fresh_round(reference, index, _flags)
  # The evaluation during training comes first: from step 0 it always has
  # one ahead of it.
  kinds = ["mid_eval"] + [TRAINING_KINDS[(index + i) % len(TRAINING_KINDS)]
                          for i in range(kills - 2)] + ["eval"]
  progress, previous = 0, []
  for number, kind in enumerate(kinds, 1):
    log = os.path.join(reference.workdir, f"round{index}-{number}.log")
    plan = _plan(kind, reference.rng, progress, reference.fit_seconds)
    result = common.run(args, plan=plan, chaos_log=log)
    events = common.read_events(log)
    label = f"round {index} run {number} {json.dumps(plan)}"
    _check_resume(campaign, previous, events, label)
    saved = [int(e[1]) for e in events if e[0] == "save_end"]
    progress = max([progress, *saved])
    if result.killed:
      campaign.landed[_where(events)] += 1
    if not common.count_kill(
        campaign, result, kind=kind, label=label, finished="runs",
        where=f" {_where(events)} (progress {progress})"):
      return
    if number > 1:
      campaign.counts["resumes"] += 1
    previous = events
  campaign.counts["resumes"] += 1
  if common.finish_round(
      campaign, reference, index, args,
      check_resume=lambda events: _check_resume(
          campaign, previous, events, f"round {index} final run")):
    _compare(campaign, reference.model_dir, model_dir, f"round {index}")


def _compare(campaign, reference, model_dir, label):
  common.compare_final_checkpoint(campaign, reference, model_dir,
                                  TOTAL_STEPS, label)
  for name in common.differing_outputs(reference, model_dir, _EVALS):
    campaign.fail(f"{label}: {name} differs from the uninterrupted run")
  best = _best_record(reference)
  if _best_record(model_dir) != best:
    campaign.fail(f"{label}: best_checkpoint.json differs: "
                  f"{_best_record(model_dir)} != {best}")
  elif common.differing_tensors(
      common.checkpoint_tensors(os.path.join(reference, best["checkpoint"])),
      common.checkpoint_tensors(os.path.join(model_dir, best["checkpoint"]))):
    campaign.fail(f"{label}: the best checkpoint differs")
  else:
    campaign.counts["bit-identical best checkpoints"] += 1
  results = [json.load(open(os.path.join(d, "eval", "eval_results.json"),
                            encoding="utf-8")) for d in (reference, model_dir)]
  for r in results:
    r.pop("checkpoint")
  if results[0] != results[1]:
    campaign.fail(f"{label}: eval_results.json differs: {results}")
  steps = [json.loads(line)["step"] for line in open(
      os.path.join(model_dir, "train_log.jsonl"), encoding="utf-8")]
  if steps != list(range(1, TOTAL_STEPS + 1)):
    campaign.fail(f"{label}: train_log steps {steps}")


def _best_record(model_dir):
  with open(os.path.join(model_dir, "best_checkpoint.json"),
            encoding="utf-8") as f:
    return json.load(f)


def run_campaign(*, workdir: str, kills: int, kills_per_round: int,
                 seed: int) -> Campaign:
  """Runs the campaign; returns its counts and failures."""
  campaign = Campaign()
  return common.run_rounds(
      campaign, lambda reference, index, missing: _round(
          campaign, reference, index, min(kills_per_round, max(2, missing))),
      workdir=workdir, seed=seed, flags=_flags, counted="kills", wanted=kills)


def report(campaign: Campaign) -> int:
  """Prints the counts, where the kills landed, steps redone and failures; the exit status."""
  redone = collections.Counter(campaign.redone)
  return common.print_report(campaign, [
      ("where the kills landed", sorted(campaign.landed.items())),
      ("steps redone by a resume (steps: resumes)", sorted(redone.items()))])


def main(argv=None):
  args = common.parse_flags(argv, __doc__, workdir="/tmp/tfqa_crash_campaign",
                            counts=SIZE_FLAGS, small=SMALL,
                            small_help=SMALL_HELP)
  return report(run_campaign(workdir=args.workdir, kills=args.kills,
                             kills_per_round=args.kills_per_round,
                             seed=args.seed))


if __name__ == "__main__":
  sys.exit(main())
