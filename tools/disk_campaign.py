"""Disk campaign: resume a tiny run into a full disk, a read-only --model_dir and a file size limit.

  python tools/disk_campaign.py --workdir=/tmp/disk        # all modes
  python tools/disk_campaign.py --small                     # what CI runs

A run is trained to step 5 and killed (checkpoints 3 and 4 on disk). Then,
for each mode, a copy of it is resumed where writing fails:

  fsize     RLIMIT_FSIZE below a checkpoint's size (any OS, no privileges):
            the checkpoint write fails with EFBIG
  enospc    --model_dir on a tmpfs with room for less than one more
            checkpoint: a real "No space left on device" (root + mount)
  readonly  --model_dir on a tmpfs remounted read-only (root + mount)

Each time tfqa_train must exit 1 with a one-paragraph `tfqa_train: error:`
(no traceback), every file that existed before must be unchanged (SHA-256),
the newest checkpoint must still be the one chosen for a resume, and once
writing works again (limit lifted, tmpfs grown, remounted read-write) the same
command must resume and finish with a final checkpoint bit-identical to an
uninterrupted run's. Prints the outcomes; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys

import campaign_common as common  # pylint: disable=import-error

EPOCHS = 4
SAVE_EVERY = 3
TOTAL_STEPS = 16
# Below a checkpoint's data file (~220 KB), above every other file.
FSIZE_LIMIT = 100 * 1024


def _digests(directory):
  found = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, directory)] = hashlib.sha256(
            f.read()).hexdigest()
  return found


def _limit_file_size():
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
  resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


def _resume(model_dir, *, preexec=None):
  env = dict(os.environ, PYTHONPATH=common.REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3",
             TF_USE_LEGACY_KERAS="1", CUDA_VISIBLE_DEVICES="")
  proc = subprocess.run(
      [sys.executable, "-m", "tfqa.cli.train", f"--model_dir={model_dir}"],
      cwd=common.REPO_ROOT, env=env, capture_output=True, text=True,
      timeout=900, preexec_fn=preexec, check=False)
  return proc


def _mount(target, *options):
  os.makedirs(target, exist_ok=True)
  return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options),
                         "tmpfs", target], capture_output=True, text=True,
                        check=False).returncode == 0


def _remount(target, *options):
  subprocess.run(["mount", "-o", ",".join(("remount",) + options), target],
                 check=True, capture_output=True)


def _umount(target):
  subprocess.run(["umount", target], check=False, capture_output=True)


def can_mount(workdir) -> bool:
  probe = os.path.join(workdir, "mount_probe")
  if os.geteuid() != 0 or not _mount(probe, "size=1m"):
    return False
  _umount(probe)
  return True


class Campaign:

  def __init__(self):
    self.rows = []
    self.failures = []

  def check(self, mode, what, ok, detail=""):
    self.rows.append((mode, what, "ok" if ok else "FAILED", detail))
    if not ok:
      message = f"{mode}: {what}: {detail}"
      print("FAILURE: " + message, flush=True)
      self.failures.append(message)


def _expect_clean_failure(campaign, mode, model_dir, before, proc, expected):
  from tfqa.layout import checkpointing  # pylint: disable=import-outside-toplevel
  from tfqa.training import trainer  # pylint: disable=import-outside-toplevel

  last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
  campaign.check(mode, "tfqa_train exits 1", proc.returncode == 1,
                 f"exit {proc.returncode}")
  campaign.check(mode, "one-line error, no traceback",
                 "Traceback" not in proc.stderr and
                 last.startswith("tfqa_train: error:") and expected in last,
                 last[:300] or proc.stderr[-1000:])
  after = _digests(model_dir)
  # The step log and TensorBoard files grow by the steps that ran before
  # the failed save (the next resume drops those lines again); the trainer
  # lock's owner record is the running trainer's, not the run's data.
  changed = sorted(n for n in before if after.get(n) != before[n] and
                   n != "train_log.jsonl" and not n.startswith("logs") and
                   not n.startswith(".tfqa-train."))
  campaign.check(mode, "files written before are unchanged", not changed,
                 f"changed or lost: {changed}")
  steps = [e["step"] for e in trainer.read_train_log(model_dir)]
  campaign.check(mode, "step log keeps steps 1-4",
                 steps[:4] == [1, 2, 3, 4], str(steps))
  newest = checkpointing.latest_readable(model_dir)
  campaign.check(mode, "newest checkpoint still ckpt-4",
                 os.path.basename(newest or "") == "ckpt-4", str(newest))
  print(f"  {mode}: {last[:220]}", flush=True)


def _expect_resume(campaign, mode, model_dir, reference):
  proc = _resume(model_dir)
  campaign.check(mode, "resume once writable succeeds", proc.returncode == 0,
                 proc.stderr[-1500:] if proc.returncode else "")
  if proc.returncode != 0 or reference is None:
    return
  final = os.path.join("checkpoints", f"ckpt-{TOTAL_STEPS}")
  differing = common.differing_tensors(
      common.checkpoint_tensors(os.path.join(reference, final)),
      common.checkpoint_tensors(os.path.join(model_dir, final)))
  campaign.check(mode, "final checkpoint bit-identical to uninterrupted",
                 not differing, f"{len(differing)} tensors differ")


def run_campaign(*, workdir, modes, compare):
  files = common.write_tiny_files(os.path.join(workdir, "files"))
  flags = dict(num_train_epochs=EPOCHS, save_every_steps=SAVE_EVERY)
  reference = None
  if compare:
    reference = os.path.join(workdir, "reference")
    shutil.rmtree(reference, ignore_errors=True)
    result = common.run(["-m", "tfqa.cli.train",
                         *common.train_flags(files, reference, **flags)])
    if result.returncode != 0:
      raise RuntimeError(f"reference failed: {result.stderr[-3000:]}")
  partial = os.path.join(workdir, "partial")
  shutil.rmtree(partial, ignore_errors=True)
  result = common.run([common.CHAOS, "train",
                       *common.train_flags(files, partial, **flags)],
                      plan={"kill": "step", "n": 5})
  if not result.killed:
    raise RuntimeError(f"partial run not killed: {result.stderr[-3000:]}")
  campaign = Campaign()
  for mode in modes:
    target = os.path.join(workdir, mode)
    _umount(target)
    shutil.rmtree(target, ignore_errors=True)
    if mode == "fsize":
      shutil.copytree(partial, target)
      before = _digests(target)
      proc = _resume(target, preexec=_limit_file_size)
      _expect_clean_failure(campaign, mode, target, before, proc,
                            "Could not write checkpoint ckpt-6")
      _expect_resume(campaign, mode, target, reference)
      continue
    used = sum(os.path.getsize(os.path.join(r, n))
               for r, _, ns in os.walk(partial) for n in ns)
    # ENOSPC: room for the run plus about half a checkpoint.
    size = used + 160 * 1024 if mode == "enospc" else 64 * 1024 * 1024
    if not _mount(target, f"size={size}"):
      campaign.check(mode, "mount a tmpfs", False, "mount failed")
      continue
    try:
      for name in os.listdir(partial):
        source, dest = os.path.join(partial, name), os.path.join(target, name)
        (shutil.copytree if os.path.isdir(source) else shutil.copy2)(source,
                                                                     dest)
      before = _digests(target)
      if mode == "readonly":
        _remount(target, "ro")
        proc = _resume(target)
        _expect_clean_failure(campaign, mode, target, before, proc,
                              "Read-only file system")
        _remount(target, "rw")
      else:
        proc = _resume(target)
        _expect_clean_failure(campaign, mode, target, before, proc,
                              "No space left on device")
        _remount(target, "size=64m")
      _expect_resume(campaign, mode, target, reference)
    finally:
      _umount(target)
  return campaign


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="/tmp/tfqa_disk_campaign")
  parser.add_argument("--small", action="store_true",
                      help="CI mode: the file size limit only, no reference "
                      "run.")
  args = parser.parse_args(argv)
  os.makedirs(args.workdir, exist_ok=True)
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  if args.small:
    modes, compare = ["fsize"], False
  else:
    modes = ["fsize"] + (["enospc", "readonly"] if can_mount(args.workdir)
                         else [])
    compare = True
  if "enospc" not in modes and not args.small:
    print("No mount privileges: the enospc and readonly modes are skipped.")
  campaign = run_campaign(workdir=args.workdir, modes=modes, compare=compare)
  common.print_table("mode | check | outcome | detail", campaign.rows)
  print(f"\nfailures: {len(campaign.failures)}")
  return 1 if campaign.failures else 0


if __name__ == "__main__":
  sys.exit(main())
