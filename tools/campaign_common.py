"""What the reliability campaigns share: the tiny run's files, subprocess runs, counts and failures, the resume rounds, checkpoint comparison, flags and report."""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (REPO_ROOT, os.path.join(REPO_ROOT, "tests")):
  if _path not in sys.path:
    sys.path.insert(0, _path)

# The tests' tiny vocab, BERT config and SQuAD data (a 1-layer, 32-wide
# random-init BERT): the campaigns exercise tfqa's machinery, not a model.
from conftest import tiny_bert_config, tiny_squad, tiny_train_flags, tiny_vocab  # pylint: disable=g-import-not-at-top,wrong-import-position

CHAOS = os.path.join(REPO_ROOT, "tools", "chaos.py")


def write_tiny_files(directory: str) -> dict:
  """Writes the tiny vocab, BERT config and v2.0 data; returns their paths."""
  os.makedirs(directory, exist_ok=True)
  files = {"vocab": os.path.join(directory, "vocab.txt"),
           "bert_config": os.path.join(directory, "bert_config.json"),
           "train_v2": os.path.join(directory, "tiny_v2.json")}
  with open(files["vocab"], "w", encoding="utf-8") as f:
    f.write("\n".join(tiny_vocab()) + "\n")
  with open(files["bert_config"], "w", encoding="utf-8") as f:
    json.dump(tiny_bert_config(), f)
  with open(files["train_v2"], "w", encoding="utf-8") as f:
    json.dump(tiny_squad(True), f)
  return files


def train_flags(files: dict, model_dir: str, **overrides) -> list[str]:
  """tfqa_train flags of the campaigns' tiny deterministic run."""
  return [f"--model_dir={model_dir}", *tiny_train_flags(files, **overrides)]


@dataclasses.dataclass
class Run:
  """One finished subprocess."""

  returncode: int
  stdout: str
  stderr: str
  seconds: float

  @property
  def killed(self) -> bool:
    return self.returncode == -9


def run(args: list[str], *, plan: dict | None = None,
        chaos_log: str | None = None, timeout: float = 900,
        env: dict | None = None) -> Run:
  """Runs `python ARGS` from the repo root with an optional chaos plan."""
  environment = dict(os.environ, PYTHONPATH=REPO_ROOT,
                     TF_CPP_MIN_LOG_LEVEL="3", TF_USE_LEGACY_KERAS="1",
                     CUDA_VISIBLE_DEVICES="")
  environment.pop("TFQA_CHAOS", None)
  if plan is not None:
    environment["TFQA_CHAOS"] = json.dumps(plan)
  if chaos_log is not None:
    environment["TFQA_CHAOS_LOG"] = chaos_log
  environment.update(env or {})
  started = time.monotonic()
  proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT,
                        env=environment, capture_output=True, text=True,
                        timeout=timeout, check=False)
  return Run(proc.returncode, proc.stdout, proc.stderr,
             time.monotonic() - started)


class Campaign:
  """Counts and failures of a campaign."""

  def __init__(self):
    self.counts = collections.Counter()
    self.failures = []

  def fail(self, message: str) -> None:
    print("FAILURE: " + message, flush=True)
    self.failures.append(message)

  def fail_exit(self, label: str, result: Run) -> None:
    """A run that exited with a status it should not have."""
    self.fail(f"{label}: exit {result.returncode}: {result.stderr[-1500:]}")


def count_kill(campaign: Campaign, result: Run, *, kind: str, label: str,
               finished: str, where: str = "") -> bool:
  """Counts a run planned to be SIGKILLed of `kind`; False when it failed instead.

  `finished` names the runs that ended before their kill ("runs",
  "exports"); `where`, where the kill landed, goes on the printed line.
  """
  if result.killed:
    campaign.counts["kills"] += 1
    campaign.counts[f"kills: {kind}"] += 1
    print(f"  {label}: killed{where}", flush=True)
  elif result.returncode == 0:
    campaign.counts[f"{finished} that finished before their kill"] += 1
    print(f"  {label}: finished before the kill", flush=True)
  else:
    campaign.fail_exit(label, result)
    return False
  return True


def place_after(event: tuple[str, ...], total_steps: int, *,
                end_evaluation: str) -> str | None:
  """Where a training process is once it logged `event`; None: where it was.

  `end_evaluation` names the evaluation after the last step.
  """
  name = event[0]
  if name in ("fit_begin", "step", "save_end"):
    return "between steps"
  if name == "save_begin":
    return "inside a checkpoint save"
  if name == "eval_begin":
    return ("inside an evaluation during training"
            if int(event[1]) < total_steps else end_evaluation)
  if name == "eval_end":
    return "after evaluation"
  return None


def where_interrupted(events: list[tuple[str, ...]], place_of) -> str:
  """Where a process was when it was killed or signalled, from its chaos log.

  `place_of(event)`: the place after an event, None for no change. A
  "signal" event (SIGTERM/SIGINT plans) marks the moment; without one the
  process was where its last event left it (SIGKILL).
  """
  state = "startup"
  for event in events:
    if event[0] == "signal":
      return state
    state = place_of(event) or state
  return state


@dataclasses.dataclass(frozen=True)
class Reference:
  """What every round of a resume campaign starts from."""

  workdir: str  # the campaign's directory
  files: dict  # write_tiny_files's paths
  model_dir: str  # the uninterrupted run
  fit_seconds: float  # its training seconds (run_reference)
  rng: random.Random


def run_rounds(campaign: Campaign, play_round, *, workdir: str, seed: int,
               flags, counted: str, wanted: int) -> Campaign:
  """Trains the reference run, then plays rounds until `wanted` interruptions are counted or one fails.

  Args:
    campaign: counts `counted` and "rounds".
    play_round: fn(reference, index, missing) plays round `index`, with
      `missing` of the `counted` interruptions still to go.
    workdir: the reference goes to WORKDIR/reference, the tiny files to
      WORKDIR/files.
    seed: of the campaign's random plans (Reference.rng).
    flags: fn(files, model_dir) -> the campaign's train_flags.
    counted: the count of interruptions, e.g. "kills".
    wanted: how many interruptions the campaign makes at least.

  Returns:
    `campaign`.
  """
  rng = random.Random(seed)
  files = write_tiny_files(os.path.join(workdir, "files"))
  model_dir = os.path.join(workdir, "reference")
  fit_seconds = run_reference(workdir, flags(files, model_dir))
  reference = Reference(workdir, files, model_dir, fit_seconds, rng)
  index = 0
  while campaign.counts[counted] < wanted and not campaign.failures:
    play_round(reference, index, wanted - campaign.counts[counted])
    index += 1
  campaign.counts["rounds"] = index
  return campaign


def fresh_round(reference: Reference, index: int, flags
                ) -> tuple[str, list[str]]:
  """Round `index`'s empty model directory and its chaos.py train arguments."""
  model_dir = os.path.join(reference.workdir, f"round{index}")
  shutil.rmtree(model_dir, ignore_errors=True)
  return model_dir, [CHAOS, "train", *flags(reference.files, model_dir)]


def finish_round(campaign: Campaign, reference: Reference, index: int,
                 args: list[str], *, check_resume=None) -> bool:
  """The last run of round `index`, with no fault planned; False when it failed.

  `check_resume(events)`: checks the run's chaos log events first.
  """
  log = os.path.join(reference.workdir, f"round{index}-final.log")
  result = run(args, plan={"kill": "none"}, chaos_log=log)
  if check_resume is not None:
    check_resume(read_events(log))
  if result.returncode != 0:
    campaign.fail_exit(f"round {index} final run", result)
    return False
  return True


def parse_flags(argv, description: str, *, workdir: str,
                counts: dict[str, int], small: dict[str, int],
                small_help: str) -> argparse.Namespace:
  """The flags of a campaign: --workdir, its `counts`, --seed and --small.

  `counts`: flag name -> default, in the order listed; `small`: the counts
  --small sets.
  """
  parser = argparse.ArgumentParser(description=description.split("\n")[0])
  parser.add_argument("--workdir", default=workdir)
  for name, default in counts.items():
    parser.add_argument(f"--{name}", type=int, default=default)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--small", action="store_true", help=small_help)
  args = parser.parse_args(argv)
  if args.small:
    for name, value in small.items():
      setattr(args, name, value)
  return args


def run_reference(workdir: str, train_args: list[str]) -> float:
  """Trains the uninterrupted reference run (WORKDIR/reference); its training seconds.

  `train_args`: tools/chaos.py train's arguments after "train" (their
  --model_dir the reference directory). The seconds are from the first
  fit_begin to the last step of the chaos log (WORKDIR/reference.log):
  what a timer plan spreads its signals over.
  """
  shutil.rmtree(os.path.join(workdir, "reference"), ignore_errors=True)
  log = os.path.join(workdir, "reference.log")
  if os.path.exists(log):
    os.remove(log)
  result = run([CHAOS, "train", *train_args], chaos_log=log)
  if result.returncode != 0:
    raise RuntimeError(f"reference run failed: {result.stderr[-3000:]}")
  with open(log, encoding="utf-8") as f:
    times = [(line.split()[0], float(line.split()[-1])) for line in f]
  fit_seconds = (max(t for name, t in times if name == "step") -
                 min(t for name, t in times if name == "fit_begin"))
  print(f"reference run: {result.seconds:.1f} s, training {fit_seconds:.2f} "
        f"s", flush=True)
  return fit_seconds


def read_events(path: str) -> list[tuple[str, ...]]:
  """The chaos log as (event, args...) tuples, timestamps dropped."""
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [tuple(line.split()[:-1]) for line in f if line.strip()]


def checkpoint_tensors(prefix: str, *, bookkeeping: bool = False) -> dict:
  """Every tensor of a checkpoint, by name.

  The save counter and object graph are left out unless bookkeeping=True:
  they differ between checkpoints of equal training states.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if bookkeeping or
          not name.startswith(("save_counter", "_CHECKPOINTABLE"))}


def differing_tensors(expected: dict, actual: dict) -> list[str]:
  """Names whose values (or presence) differ, bit for bit."""
  import numpy as np  # pylint: disable=import-outside-toplevel

  names = sorted(set(expected) | set(actual))
  return [name for name in names
          if name not in expected or name not in actual or
          not np.array_equal(expected[name], actual[name])]


def compare_final_checkpoint(campaign, reference: str, model_dir: str,
                             step: int, label: str) -> None:
  """Counts (or fails) ckpt-`step` of `model_dir` against the reference's, bit for bit.

  `campaign` has `counts` (a Counter) and `fail(message)`.
  """
  final = f"checkpoints/ckpt-{step}"
  differing = differing_tensors(
      checkpoint_tensors(os.path.join(reference, final)),
      checkpoint_tensors(os.path.join(model_dir, final)))
  campaign.counts["final checkpoints compared"] += 1
  if differing:
    campaign.fail(f"{label}: {len(differing)} tensors differ from the "
                  f"uninterrupted run, e.g. {differing[:3]}")
  else:
    campaign.counts["bit-identical final checkpoints"] += 1


def differing_outputs(reference: str, model_dir: str,
                      evals: list[int]) -> list[str]:
  """The step log and evaluation outputs (end and `evals` steps) whose text differs.

  A file missing from `model_dir` differs.
  """
  names = ["train_log.jsonl"] + [
      f"eval/{prefix}{name}"
      for prefix in ("", *(f"step-{s}/" for s in evals))
      for name in ("predictions.json", "null_odds.json",
                   "nbest_predictions.json")]
  return [name for name in names
          if _text(os.path.join(reference, name)) !=
          _text(os.path.join(model_dir, name))]


def _text(path: str) -> str | None:
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return f.read()


def print_table(title: str, rows: list[tuple]) -> None:
  print(f"\n{title}")
  for row in rows:
    print("  " + " | ".join(str(cell) for cell in row))


def print_report(campaign: Campaign, tables: list[tuple[str, list[tuple]]]
                 ) -> int:
  """Prints the counts, `tables` ((title, rows)) and failures; the exit status."""
  print_table("counts", sorted(campaign.counts.items()))
  for title, rows in tables:
    print_table(title, rows)
  print_failures(campaign.failures)
  return 1 if campaign.failures else 0


def print_failures(failures: list[str]) -> None:
  """The campaign's last lines: the failure count, then one line each."""
  print(f"\nfailures: {len(failures)}")
  for failure in failures:
    print("  " + failure)
