"""Corruption campaign: damage each file of a run's latest checkpoint and of an export, check what tfqa does.

  python tools/corruption_campaign.py --bitflips=24 --workdir=/tmp/corrupt
  python tools/corruption_campaign.py --small     # what CI runs
  python tools/corruption_campaign.py --config_bit_sweep --workdir=/tmp/corrupt

Trains a tiny run (checkpoints at steps 4, 6 and 8 kept) and exports it. Then
for each file of the latest checkpoint (index, data shard, the `checkpoint`
state file) and run_config.json, and for every file of the SavedModel version
and of pretrained/, it applies each damage to a fresh copy: truncate (to 0,
1/2 and all but one byte), zero every byte, flip one bit (at random offsets),
delete. Outcomes:

  run files   fell back   resume picks an older checkpoint, equal to the
                          undamaged one
              unaffected  resume picks the latest checkpoint and it is
                          bit-identical to the undamaged one (e.g. the state
                          file's damage did not matter)
              refused     a clear error that names the damaged file
              SILENT      a resume that would train from different values or
                          settings: a failure
  export      detected    `tfqa_predict --verify_manifest`'s check (SavedModel)
                          and integrity.verify_digests (both trees) refuse it,
                          naming the file
              SILENT      not detected: a failure

With --resume_runs, one damaged copy per (file, damage) also goes through a
real `tfqa_train --model_dir=COPY` to the end, whose final checkpoint must
equal the undamaged run's (or which must fail naming the file).
Prints the counts; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import sys

import campaign_common as common  # pylint: disable=import-error

EPOCHS = 2  # 8 steps
SAVE_EVERY = 3  # saves at 3, 4, 6, 8; the newest 3 kept
LATEST = "ckpt-8"
FALLBACK = "ckpt-6"


def damages(path: str, rng: random.Random, bitflips: int) -> list[tuple]:
  """(name, function) pairs that damage the file at `path`."""
  size = os.path.getsize(path)
  found = [("delete", os.remove)]
  for label, keep in (("truncate to 0", 0), ("truncate to half", size // 2),
                      ("truncate last byte", size - 1)):
    if keep < size:
      found.append((label, lambda p, keep=keep: _truncate(p, keep)))
  if size:
    found.append(("zero all bytes", _zero))
    offsets = sorted(rng.sample(range(size * 8), min(bitflips, size * 8)))
    for bit in offsets:
      found.append((f"flip bit {bit}", lambda p, bit=bit: _flip(p, bit)))
  return found


def _truncate(path, size):
  with open(path, "r+b") as f:
    f.truncate(size)


def _zero(path):
  size = os.path.getsize(path)
  with open(path, "wb") as f:
    f.write(b"\0" * size)


def _flip(path, bit):
  with open(path, "r+b") as f:
    f.seek(bit // 8)
    byte = f.read(1)[0]
    f.seek(bit // 8)
    f.write(bytes([byte ^ (1 << (bit % 8))]))


def _kind(name):
  return name.split(" ")[0] if not name.startswith("flip") else "flip bit"


class Campaign:

  def __init__(self):
    self.outcomes = collections.Counter()  # (file, damage kind, outcome)
    self.failures = []

  def record(self, target, damage, outcome, detail=""):
    self.outcomes[(target, _kind(damage), outcome)] += 1
    if outcome == "SILENT" or outcome == "FAILED":
      message = f"{target} / {damage}: {outcome} {detail}"
      print("FAILURE: " + message, flush=True)
      self.failures.append(message)


def resume_outcome(model_dir: str, pristine: dict, pristine_config,
                   damaged_name: str) -> tuple[str, str]:
  """What a resume of `model_dir` would do: (outcome, detail).

  Mirrors tfqa_train's order: read run_config.json, list and verify the
  checkpoints, restore the newest readable one (compared bit for bit with
  the undamaged copy of the same checkpoint).
  """
  from tfqa.layout import checkpointing  # pylint: disable=import-outside-toplevel
  from tfqa.layout import rundir  # pylint: disable=import-outside-toplevel

  try:
    run_config = rundir.read_run_config(model_dir)
    if run_config is None:
      return _refused_or_failed(damaged_name, "run_config.json is gone, and "
                                "tfqa_train asks for --model (tested by the "
                                "resume runs)")
    if run_config != pristine_config:
      return "SILENT", "run_config.json parsed to other settings"
    prefix = checkpointing.latest_readable(model_dir)
  except ValueError as e:  # CheckpointError is a ValueError
    return _refused_or_failed(damaged_name, str(e))
  if prefix is None:
    return "FAILED", "no checkpoint found: the run would start over"
  name = os.path.basename(prefix)
  tensors = common.checkpoint_tensors(prefix, bookkeeping=True)
  if common.differing_tensors(pristine[name], tensors):
    return "SILENT", f"{name} restores other values"
  return ("unaffected" if name == LATEST else "fell back"), name


def _refused_or_failed(damaged_name, message):
  if damaged_name in message or damaged_name == "run_config.json" and (
      "run_config.json" in message):
    return "refused", message.splitlines()[0][:160]
  return "FAILED", f"error does not name {damaged_name}: {message[:300]}"


def _run_files(model_dir):
  directory = os.path.join(model_dir, "checkpoints")
  names = sorted(n for n in os.listdir(directory) if n.startswith(LATEST))
  return [os.path.join("checkpoints", n) for n in names] + [
      os.path.join("checkpoints", "checkpoint"), "run_config.json"]


def run_campaign(*, workdir, bitflips, seed, resume_runs, small):
  from tfqa import export  # pylint: disable=import-outside-toplevel
  from tfqa.layout import rundir  # pylint: disable=import-outside-toplevel

  rng = random.Random(seed)
  files = common.write_tiny_files(os.path.join(workdir, "files"))
  run_dir = os.path.join(workdir, "run")
  shutil.rmtree(run_dir, ignore_errors=True)
  result = common.run(["-m", "tfqa.cli.train", *common.train_flags(
      files, run_dir, num_train_epochs=EPOCHS, save_every_steps=SAVE_EVERY)])
  if result.returncode != 0:
    raise RuntimeError(f"training failed: {result.stderr[-3000:]}")
  pristine = {name: common.checkpoint_tensors(
      os.path.join(run_dir, "checkpoints", name), bookkeeping=True)
              for name in ("ckpt-4", FALLBACK, LATEST)}
  pristine_config = rundir.read_run_config(run_dir)
  campaign = Campaign()
  scratch = os.path.join(workdir, "scratch")
  resumed = set()
  for target in _run_files(run_dir):
    for damage, apply in damages(os.path.join(run_dir, target), rng,
                                 bitflips):
      shutil.rmtree(scratch, ignore_errors=True)
      shutil.copytree(run_dir, scratch)
      apply(os.path.join(scratch, target))
      outcome, detail = resume_outcome(scratch, pristine, pristine_config,
                                       os.path.basename(target))
      campaign.record(target, damage, outcome, detail)
      key = (target, _kind(damage))
      if resume_runs and key not in resumed:
        resumed.add(key)
        _real_resume(campaign, scratch, run_dir, target, damage)
  export_dir = os.path.join(workdir, "export")
  shutil.rmtree(export_dir, ignore_errors=True)
  export.export_model(model_dir=run_dir, export_dir=export_dir)
  _export_campaign(campaign, export_dir, workdir, rng, bitflips, small)
  return campaign


def _real_resume(campaign, scratch, run_dir, target, damage):
  """tfqa_train resumes the damaged copy to the end (or refuses, naming it)."""
  extend = os.path.join(os.path.dirname(scratch), "resumed")
  shutil.rmtree(extend, ignore_errors=True)
  shutil.copytree(scratch, extend)
  result = common.run(["-m", "tfqa.cli.train", f"--model_dir={extend}",
                       "--num_train_epochs=3"])
  label = f"{target} / {damage} (tfqa_train resume)"
  name = os.path.basename(target)
  if result.returncode == 0:
    campaign.outcomes[(target, _kind(damage), "resume run: trained on")] += 1
    print(f"  {label}: trained on", flush=True)
  elif "Traceback" not in result.stderr and name in result.stderr:
    campaign.outcomes[(target, _kind(damage), "resume run: refused")] += 1
    print(f"  {label}: refused: {result.stderr.strip().splitlines()[-1]}",
          flush=True)
  else:
    campaign.record(target, damage, "FAILED",
                    f"tfqa_train resume: exit {result.returncode}: "
                    f"{result.stderr[-1500:]}")


def _export_campaign(campaign, export_dir, workdir, rng, bitflips, small):
  from tfqa.inference import predictor  # pylint: disable=import-outside-toplevel
  from tfqa.layout import integrity  # pylint: disable=import-outside-toplevel

  version = os.path.join("saved_model", "tfqa", "1")
  targets = []
  for tree in (version, "pretrained"):
    for root, _, names in os.walk(os.path.join(export_dir, tree)):
      targets += [os.path.relpath(os.path.join(root, n), export_dir)
                  for n in sorted(names)]
  scratch = os.path.join(workdir, "export_scratch")
  for target in targets:
    found = damages(os.path.join(export_dir, target), rng,
                    2 if small else max(2, bitflips // 4))
    for damage, apply in found:
      shutil.rmtree(scratch, ignore_errors=True)
      shutil.copytree(export_dir, scratch)
      apply(os.path.join(scratch, target))
      name = os.path.basename(target)
      outcomes = []
      checks = [("verify_digests", lambda: integrity.verify_digests(scratch))]
      if target.startswith("saved_model"):
        checks.append(("--verify_manifest", lambda: predictor.load_predictor(
            scratch, verify_manifest=True)))
      for check, call in checks:
        try:
          call()
          outcomes.append(f"{check}: SILENT")
        except integrity.ManifestMismatchError as e:
          outcomes.append(f"{check}: detected" if name in str(e) else
                          f"{check}: FAILED (does not name {name})")
        except ValueError as e:
          # E.g. saved_model.pb deleted: the version is not found at all.
          outcomes.append(f"{check}: refused ({str(e)[:80]})")
      label = "SILENT" if any("SILENT" in o for o in outcomes) else (
          "FAILED" if any("FAILED" in o for o in outcomes) else "detected")
      campaign.record(target, damage, label, "; ".join(outcomes))


def config_bit_sweep(run_dir: str) -> collections.Counter:
  """Flips every bit of run_dir/run_config.json in turn; counts what reading does."""
  from tfqa.layout import rundir  # pylint: disable=import-outside-toplevel

  pristine = rundir.read_run_config(run_dir)
  with open(rundir.run_config_path(run_dir), "rb") as f:
    raw = f.read()
  scratch = os.path.join(os.path.dirname(run_dir), "sweep")
  os.makedirs(scratch, exist_ok=True)
  counts = collections.Counter()
  for bit in range(len(raw) * 8):
    damaged = bytearray(raw)
    damaged[bit // 8] ^= 1 << (bit % 8)
    with open(rundir.run_config_path(scratch), "wb") as f:
      f.write(damaged)
    try:
      same = rundir.read_run_config(scratch) == pristine
      counts["unaffected" if same else "SILENT"] += 1
    except ValueError as e:
      message = str(e)
      counts["refused: settings digest" if rundir.SETTINGS_DIGEST_KEY in
             message else "refused: invalid JSON or UTF-8" if (
                 "not valid" in message) else
             "refused: unknown or ill-typed field"] += 1
  return counts


def report(campaign):
  rows = sorted(campaign.outcomes.items())
  common.print_table("(file, damage, outcome): count",
                     [(f, d, o, n) for (f, d, o), n in rows])
  total = sum(n for (f, d, o), n in rows if not o.startswith("resume run"))
  print(f"\ndamaged copies checked: {total}")
  common.print_failures(campaign.failures)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="/tmp/tfqa_corruption_campaign")
  parser.add_argument("--bitflips", type=int, default=24,
                      help="Random bit flips per checkpoint/config file.")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--resume_runs", action="store_true",
                      help="Also resume one copy per (file, damage) with "
                      "tfqa_train.")
  parser.add_argument("--config_bit_sweep", action="store_true",
                      help="Only flip every bit of WORKDIR/run/run_config.json "
                      "(left by an earlier campaign) in turn.")
  parser.add_argument("--small", action="store_true",
                      help="CI mode: 3 bit flips per file, no resume runs.")
  args = parser.parse_args(argv)
  if args.small:
    args.bitflips, args.resume_runs = 3, False
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  from absl import logging  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.ERROR)  # every fallback warns; counted here
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.get_logger().setLevel("ERROR")
  if args.config_bit_sweep:
    counts = config_bit_sweep(os.path.join(args.workdir, "run"))
    common.print_table("run_config.json single-bit flips: count",
                       sorted(counts.items()))
    return 1 if counts["SILENT"] else 0
  campaign = run_campaign(workdir=args.workdir, bitflips=args.bitflips,
                          seed=args.seed, resume_runs=args.resume_runs,
                          small=args.small)
  report(campaign)
  return 1 if campaign.failures else 0


if __name__ == "__main__":
  sys.exit(main())
