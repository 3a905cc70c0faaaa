"""Export kill campaign: SIGKILL tfqa_export at random moments while a watcher lists the versions.

  python tools/export_kill_campaign.py --kills=15 --seed=0 --workdir=/tmp/ekill
  python tools/export_kill_campaign.py --small     # what CI runs (1 kill)

Trains a tiny run and exports it once (version 1). Then runs `tfqa_export`
into the same export directory again and again, each run SIGKILLed at a
planned moment (a random time, or right after the SavedModel was staged,
after pretrained/ was staged, after verification, between renaming the old
pretrained/ aside and the new one in, after publishing and before the
manifest), with no cleanup in between; then one last run that must succeed.

Meanwhile a watcher thread lists EXPORT_DIR/saved_model/tfqa/ every few
milliseconds, as TF Serving's file system source does: every all-digit
directory it ever sees must hold a whole SavedModel (the file set of
version 1). After each kill, every version on disk must be whole, and
manifest.json must parse and describe a whole version. At the end
`integrity.verify_digests` must pass and no staging directory may be left.
Prints the counts; exits 1 on any failure.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import threading
import time

import campaign_common as common  # pylint: disable=import-error

POINTS = ("publish_aside", "after_saved_model", "after_pretrained",
          "after_verify", "after_publish")


def _version_files(directory):
  found = set()
  for root, _, names in os.walk(directory):
    found |= {os.path.relpath(os.path.join(root, n), directory)
              for n in names}
  return found


class Watcher(threading.Thread):
  """Lists the model directory like a TF Serving watcher, checking versions."""

  def __init__(self, models_dir, expected_files, export_dir):
    super().__init__(daemon=True)
    self.models_dir, self.expected = models_dir, expected_files
    self.export_dir = export_dir
    self.scans = 0
    self.versions_seen = set()
    self.partial = []
    self.pretrained_absent_scans = 0
    self.stop = threading.Event()

  def run(self):
    while not self.stop.is_set():
      try:
        names = os.listdir(self.models_dir)
      except FileNotFoundError:
        names = []
      for name in names:
        if not name.isdigit():
          continue
        version = os.path.join(self.models_dir, name)
        files = _version_files(version)
        # A version being replaced (--overwrite) is never used here, so a
        # directory that vanished between listdir and walk is a bug too.
        if files != self.expected:
          missing = sorted(self.expected - files)[:3]
          self.partial.append(f"version {name}: missing {missing}")
        self.versions_seen.add(name)
      if not os.path.isdir(os.path.join(self.export_dir, "pretrained")):
        self.pretrained_absent_scans += 1
      self.scans += 1
      time.sleep(0.002)


def _check_on_disk(campaign, export_dir, expected, label):
  from tfqa.layout import exportdir  # pylint: disable=import-outside-toplevel

  models_dir = os.path.join(export_dir, "saved_model", "tfqa")
  for version in exportdir.existing_versions(models_dir):
    files = _version_files(os.path.join(models_dir, str(version)))
    if files != expected:
      campaign.fail(f"{label}: version {version} on disk is partial")
  try:
    manifest = json.load(open(os.path.join(export_dir, "manifest.json"),
                              encoding="utf-8"))
  except (OSError, ValueError) as e:
    campaign.fail(f"{label}: manifest.json unreadable: {e}")
    return
  described = os.path.join(export_dir, manifest["paths"]["saved_model"])
  if _version_files(described) != expected:
    campaign.fail(f"{label}: manifest.json describes a partial or missing "
                  f"version {manifest['version']}")
  if not os.path.isdir(os.path.join(export_dir, "pretrained")):
    campaign.counts["kills that left pretrained/ absent until the rerun"] += 1


def _hidden(export_dir):
  """Leftovers of an export (hidden names), the export's marker aside."""
  from tfqa.layout import exportdir  # pylint: disable=import-outside-toplevel

  models_dir = os.path.join(export_dir, "saved_model", "tfqa")
  return sorted(
      [n for n in os.listdir(export_dir)
       if n.startswith(".") and n != exportdir.EXPORT_MARKER] +
      [f"saved_model/tfqa/{n}" for n in os.listdir(models_dir)
       if n.startswith(".")])


def run_campaign(*, workdir, kills, seed, verify=True):
  from tfqa.inference import predictor  # pylint: disable=import-outside-toplevel
  from tfqa.layout import integrity  # pylint: disable=import-outside-toplevel

  rng = random.Random(seed)
  files = common.write_tiny_files(os.path.join(workdir, "files"))
  run_dir = os.path.join(workdir, "run")
  export_dir = os.path.join(workdir, "export")
  for directory in (run_dir, export_dir):
    shutil.rmtree(directory, ignore_errors=True)
  result = common.run(["-m", "tfqa.cli.train", *common.train_flags(
      files, run_dir, num_train_epochs=1)])
  if result.returncode != 0:
    raise RuntimeError(f"training failed: {result.stderr[-3000:]}")
  args = [common.CHAOS, "export", f"--model_dir={run_dir}",
          f"--export_dir={export_dir}", "--verify" if verify else "--noverify"]
  log = os.path.join(workdir, "export.log")
  first = common.run(args, chaos_log=log)
  if first.returncode != 0:
    raise RuntimeError(f"first export failed: {first.stderr[-3000:]}")
  events = open(log, encoding="utf-8").read().split("\n")
  times = {line.split()[0]: float(line.split()[-1]) for line in events
           if line.strip()}
  export_seconds = times["export_end"] - times["export_begin"]
  print(f"first export: {first.seconds:.1f} s ({export_seconds:.1f} s in "
        f"export_model)", flush=True)
  models_dir = os.path.join(export_dir, "saved_model", "tfqa")
  expected = _version_files(os.path.join(models_dir, "1"))
  campaign = common.Campaign()
  watcher = Watcher(models_dir, expected, export_dir)
  watcher.start()
  try:
    for number in range(kills):
      if number % 2 == 1:
        plan = {"kill": "timer",
                "seconds": round(rng.uniform(0.0, 0.8 * export_seconds), 3)}
      else:
        plan = {"kill": "export", "point": POINTS[(number // 2) % len(POINTS)]}
      result = common.run(args, plan=plan, chaos_log=log)
      label = f"run {number + 1} {json.dumps(plan)}"
      common.count_kill(campaign, result, kind=plan.get("point", "timer"),
                        label=label, finished="exports")
      _check_on_disk(campaign, export_dir, expected, label)
      campaign.counts["max hidden staging entries after a kill"] = max(
          campaign.counts["max hidden staging entries after a kill"],
          len(_hidden(export_dir)))
    final = common.run(args, plan={"kill": "none"}, chaos_log=log)
    if final.returncode != 0:
      campaign.fail_exit("final rerun", final)
    else:
      campaign.counts["final rerun succeeded"] += 1
  finally:
    watcher.stop.set()
    watcher.join()
  _check_on_disk(campaign, export_dir, expected, "after the final rerun")
  try:
    integrity.verify_digests(export_dir)
    predictor.check_manifest(predictor.resolve_saved_model(export_dir))
    campaign.counts["final export verified against its manifest"] += 1
  except ValueError as e:
    campaign.fail(f"final export does not verify: {e}")
  leftovers = _hidden(export_dir)
  campaign.counts["staging entries left after the final rerun"] = len(
      leftovers)
  if leftovers:
    campaign.fail(f"staging entries left after the final rerun: "
                  f"{leftovers}")
  campaign.counts["watcher scans"] = watcher.scans
  campaign.counts["versions the watcher saw"] = len(watcher.versions_seen)
  campaign.counts["partial versions the watcher saw"] = len(watcher.partial)
  campaign.counts["watcher scans with pretrained/ absent"] = (
      watcher.pretrained_absent_scans)
  for problem in watcher.partial[:10]:
    campaign.fail(f"watcher: {problem}")
  return campaign


def main(argv=None):
  args = common.parse_flags(
      argv, __doc__, workdir="/tmp/tfqa_export_kill_campaign",
      counts={"kills": 15}, small={"kills": 1},
      small_help="CI mode: 1 kill (between pretrained/'s two renames), no "
      "verification.")
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  campaign = run_campaign(workdir=args.workdir, kills=args.kills,
                          seed=args.seed, verify=not args.small)
  return common.print_report(campaign, [])


if __name__ == "__main__":
  sys.exit(main())
