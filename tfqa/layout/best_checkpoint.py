"""The best checkpoint of a run (--keep_best): kept in best/, outside the rotation, recorded with its step and metrics."""

from __future__ import annotations

import os
from typing import Callable

from absl import logging

from tfqa import errors
from tfqa.layout import fs
from tfqa.layout import json_files
from tfqa.layout import rundir

# What `tfqa_export --checkpoint=` (and resolve) take for the best one.
BEST = "best"


def record_path(model_dir: str) -> str:
  return os.path.join(model_dir, rundir.BEST_RECORD_FILE)


def read_record(model_dir: str) -> dict | None:
  """The run's best_checkpoint.json, or None when it has none.

  Keys: metric, value, step, checkpoint (prefix relative to model_dir),
  metrics (the whole evaluation).
  """
  path = record_path(model_dir)
  if not fs.isfile(path):
    return None
  return json_files.read_json(path, what="the best checkpoint record")


def update(model_dir: str, *, metric: str, step: int, metrics: dict,
           write_checkpoint: Callable[[str], None]) -> bool:
  """Keeps the evaluated step's weights if they beat the recorded best.

  Better means a strictly higher `metric` (ties keep the earlier step). A
  record of the same step is kept as it is: a resumed run that evaluates a
  step again leaves the checkpoint and record of its first evaluation. A
  record under another metric is replaced.

  The checkpoint is written before the record names it, and older ones are
  deleted after, so a run killed at any point leaves a record naming a
  complete checkpoint.

  Args:
    model_dir: the run directory.
    metric: "f1" or "exact", a key of `metrics`.
    step: the global step evaluated.
    metrics: the evaluation's metrics.
    write_checkpoint: fn(prefix) writing the model's weights there.

  Returns:
    Whether this step is now the best.
  """
  record = read_record(model_dir)
  value = float(metrics[metric])
  if record is not None and record.get("metric") == metric:
    if record["step"] == step:
      return True
    if value <= record["value"]:
      return False
  relative = os.path.join(rundir.BEST_SUBDIR, f"{rundir.CHECKPOINT_NAME}-{step}")
  fs.makedirs(os.path.join(model_dir, rundir.BEST_SUBDIR))
  write_checkpoint(os.path.join(model_dir, relative))
  json_files.atomic_write_json(record_path(model_dir), {
      "metric": metric, "value": value, "step": step,
      "checkpoint": relative, "metrics": metrics})
  _delete_others(model_dir, keep=relative)
  logging.info("Best checkpoint so far by %s (%.4g): step %d, kept as %s.",
               metric, value, step, relative)
  return True


def _delete_others(model_dir, *, keep):
  kept = os.path.basename(keep)
  for path in fs.glob(os.path.join(model_dir, rundir.BEST_SUBDIR),
                      rundir.CHECKPOINT_NAME + "-*"):
    if os.path.basename(path).split(".", 1)[0] != kept:
      fs.remove(path)


def prefix(model_dir: str) -> str:
  """The best checkpoint's prefix.

  Raises:
    ValueError: the run has no best checkpoint (naming why and the fix).
  """
  record = read_record(model_dir)
  if record is None:
    raise errors.ArgumentNamingError("{checkpoint}=" + errors.literal(
        f"{BEST}: {model_dir} has no best checkpoint (no "
        f"{rundir.BEST_RECORD_FILE}); expected a run trained with "
        f"--keep_best=f1 or --keep_best=exact and evaluated at least once. "
        f"Resume it with --keep_best=f1 --eval_every_steps=N, or pass a "
        f"checkpoint prefix."), ["checkpoint"])
  return os.path.join(model_dir, record["checkpoint"])


def resolve(model_dir: str, checkpoint: str | None) -> str | None:
  """`checkpoint` with BEST replaced by the run's best checkpoint prefix."""
  return prefix(model_dir) if checkpoint == BEST else checkpoint


def describe(model_dir: str, checkpoint: str) -> str | None:
  """One sentence for a model card on how `checkpoint` relates to the best.

  None when the run keeps no best checkpoint.
  """
  record = read_record(model_dir)
  if record is None:
    return None
  best = os.path.join(model_dir, record["checkpoint"])
  scores = ", ".join(f"{name} {record['metrics'][name]:.4g}"
                     for name in ("exact", "f1") if name in record["metrics"])
  if os.path.normpath(checkpoint) == os.path.normpath(best):
    return (f"This is the run's best checkpoint by {record['metric']} "
            f"(--keep_best), from step {record['step']} ({scores}).")
  return (f"This is not the run's best checkpoint by {record['metric']}: "
          f"that is step {record['step']} ({scores}); export it with "
          f"--checkpoint={BEST}.")
