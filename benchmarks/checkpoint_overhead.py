"""Checkpoint cost of tfqa training: time per save, overhead at the default interval, restore time, size on disk.

  .venv/bin/python benchmarks/checkpoint_overhead.py [--steps=16] [--small_interval=5]

Fine-tunes the bundled MiniLM-L6 on articles 1-4 of the shared real sample
twice, each time for --steps steps from scratch (batch 16):
  default  TrainConfig's save_every_steps (500): one save, at the last step;
  small    save_every_steps=--small_interval: a save every few steps.
Every call of tfqa.layout.checkpointing.save is timed (a timing wrapper around the
module function; nothing else changes). Step time: the mean step duration
of the default run after its first step (which traces the train function),
from the per-step wall times of the run's TensorBoard log; the mean
(train_seconds - save seconds) / steps is reported too.

Overhead at interval k = save_seconds / (k * step_seconds): the share of
training time spent saving. At the default interval (500 steps, more than a
15-minute CPU run reaches) it is computed from the measured save and step
times; at the small interval it is also measured without the timing
wrapper, from the step-end wall times of both runs (see `save_gaps`), which
checks the formula.

Restore: a fresh training state (model + optimizer, as training builds it)
restored from the last checkpoint: tfqa's latest_readable (reads every
tensor to catch corruption) and restore (strict) timed separately.
Size: the checkpoint's files vs the model weights alone (bytes of the model's
variables, and a tf_keras save_weights .h5 file).

Prints one JSON summary, then a last line `checkpoint_overhead_percent=<x>`
(at the default interval).
"""

import glob
import json
import os
import time

from tfqa.cli import common  # Keras 2 setup.

common.hide_pytorch()  # It runs no PyTorch model.

from absl import app
from absl import flags
import numpy as np

import bench_common

_DATA = flags.DEFINE_string("data", bench_common.SHARED_SAMPLE,
                            "SQuAD JSON with >= 5 articles (default: the "
                            "shared real sample).")
_STEPS = flags.DEFINE_integer("steps", 16, "Training steps of each run.")
_SMALL_INTERVAL = flags.DEFINE_integer(
    "small_interval", 5, "save_every_steps of the directly measured run.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Batch size.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Default: a temp dir.")
_TINY = flags.DEFINE_bool("tiny", False,
                          "Smoke mode: tiny random BERT, 4 steps, interval 2.")


class SaveTimer:
  """Times every call of tfqa.layout.checkpointing.save while installed."""

  def __init__(self):
    self.seconds = []

  def __enter__(self):
    from tfqa.layout import checkpointing  # pylint: disable=import-outside-toplevel

    self._module, self._save = checkpointing, checkpointing.save

    def timed_save(*args, **kwargs):
      started = time.perf_counter()
      try:
        return self._save(*args, **kwargs)
      finally:
        self.seconds.append(time.perf_counter() - started)

    checkpointing.save = timed_save
    return self

  def __exit__(self, *exc):
    self._module.save = self._save


def train_run(run_config, model_dir):
  """Trains in a fresh directory; returns (TrainResult, save seconds)."""
  from tfqa.training import trainer  # pylint: disable=import-outside-toplevel

  with SaveTimer() as timer:
    result = trainer.train_and_evaluate(run_config, model_dir, verbose=0)
  return result, timer.seconds


def run_stats(result, save_seconds, interval, model_dir):
  """Times of one run, and its step-end wall times (TensorBoard log)."""
  non_save = result.train_seconds - sum(save_seconds)
  ends = bench_common.step_end_times(model_dir)
  last = result.steps_run
  return {
      "save_every_steps": interval, "steps": last,
      "train_seconds": round(result.train_seconds, 2),
      "saves": len(save_seconds),
      "save_seconds": [round(s, 3) for s in save_seconds],
      "mean_step_seconds": round(non_save / last, 3),
      # Without the first step, which traces the train function.
      "mean_step_seconds_after_first": round(
          (ends[last] - ends[1]) / (last - 1), 3),
      # Save time over the rest of this short run (first-step tracing
      # included, which a long run amortises).
      "save_share_of_run_percent": round(100 * sum(save_seconds) / non_save,
                                         3),
  }, ends


def save_gaps(default_ends, small_ends, interval):
  """Extra seconds the small-interval run took for each periodic save.

  Both runs train on the same batches at the same steps (batches are a pure
  function of seed and step), so the difference of their durations of step
  k + 1 (which in the small run starts after the save at step k) is the
  save's cost as the training loop sees it, log flush included: a check on
  the timed `checkpointing.save` calls that needs no wrapper.
  """
  last = max(small_ends)
  return [(small_ends[k + 1] - small_ends[k]) -
          (default_ends[k + 1] - default_ends[k])
          for k in range(interval, last, interval)]


def checkpoint_bytes(prefix):
  return sum(os.path.getsize(p) for p in glob.glob(prefix + ".*"))


def time_restore(run_config, model_dir):
  """(verify seconds, restore seconds, prefix, weights bytes, h5 bytes)."""
  from tfqa.layout import checkpointing  # pylint: disable=import-outside-toplevel
  from tfqa.layout import rundir  # pylint: disable=import-outside-toplevel
  from tfqa.model import modeling  # pylint: disable=import-outside-toplevel
  from tfqa.model import source as model_source  # pylint: disable=import-outside-toplevel
  from tfqa.training import optimization  # pylint: disable=import-outside-toplevel

  train = run_config.train
  # The training runs of this process already set the runtime state a
  # restore needs (dropout layers draw from tf.random.Generators).
  model, _ = modeling.build_model(model_source.ModelSource(
      "bert_config", os.path.join(model_dir, rundir.BERT_CONFIG_FILE),
      os.path.join(model_dir, rundir.TOKENIZER_SUBDIR)))
  optimizer = optimization.create_optimizer(
      learning_rate=train.learning_rate, total_steps=train.max_steps,
      warmup_ratio=train.warmup_ratio, weight_decay=train.weight_decay,
      clip_norm=train.clip_norm)
  model.compile(optimizer=optimizer)
  state = checkpointing.new_state(model, optimizer, seed=train.seed)
  started = time.perf_counter()
  prefix = checkpointing.latest_readable(model_dir)
  verify_seconds = time.perf_counter() - started
  started = time.perf_counter()
  checkpointing.restore(state, prefix)
  restore_seconds = time.perf_counter() - started
  if int(state.step.numpy()) != train.max_steps:
    raise RuntimeError(f"Restored step {int(state.step.numpy())}, expected "
                       f"{train.max_steps}.")
  weights_bytes = int(sum(np.prod(w.shape) * w.dtype.size
                          for w in model.weights))
  h5 = os.path.join(model_dir, "weights_only.h5")
  model.save_weights(h5)
  return verify_seconds, restore_seconds, prefix, weights_bytes, (
      os.path.getsize(h5))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  import dataclasses  # pylint: disable=import-outside-toplevel
  from tfqa import config  # pylint: disable=import-outside-toplevel

  tiny = _TINY.value
  workdir, train_file, _, train_titles, _ = bench_common.split_in_workdir(
      _DATA.value, _WORKDIR.value, temp_prefix="tfqa-ckpt-bench-", tiny=tiny)
  steps = 4 if tiny else _STEPS.value
  small = 2 if tiny else _SMALL_INTERVAL.value
  default_interval = config.TrainConfig().save_every_steps
  run_config = config.RunConfig(
      model=bench_common.model_config("tiny" if tiny else "pretrained",
                                      workdir),
      data=config.DataConfig(train_file=train_file),
      train=config.TrainConfig(train_batch_size=4 if tiny else _BATCH.value,
                               learning_rate=3e-4, num_train_epochs=1_000_000,
                               max_steps=steps, seed=1))
  default_result, default_saves = train_run(
      run_config, os.path.join(workdir, "default_interval"))
  small_config = dataclasses.replace(
      run_config, train=dataclasses.replace(run_config.train,
                                            save_every_steps=small))
  small_dir = os.path.join(workdir, "small_interval")
  small_result, small_saves = train_run(small_config, small_dir)

  default_stats, default_ends = run_stats(
      default_result, default_saves, default_interval,
      os.path.join(workdir, "default_interval"))
  small_stats, small_ends = run_stats(small_result, small_saves, small,
                                      small_dir)
  gaps = save_gaps(default_ends, small_ends, small)
  save_seconds = float(np.mean(default_saves + small_saves))
  # The step time without the first step's tracing (which a long run
  # amortises): shorter than the mean, so the larger overhead estimate.
  step_seconds = default_stats["mean_step_seconds_after_first"]

  def predicted(interval):
    return 100 * save_seconds / (interval * step_seconds)

  verify_seconds, restore_seconds, prefix, weights_bytes, h5_bytes = (
      time_restore(small_config, small_dir))
  ckpt_bytes = checkpoint_bytes(prefix)
  summary = {
      "model": "tiny random BERT" if tiny else "minilm-l6",
      "train_articles": train_titles,
      "batch_size": run_config.train.train_batch_size,
      "runs": {"default": default_stats, "small": small_stats},
      "mean_save_seconds": round(save_seconds, 3),
      "save_cost_from_step_times_seconds": [round(g, 3) for g in gaps],
      "step_seconds_used": step_seconds,
      "overhead_percent": {
          f"default_interval_{default_interval}_predicted": round(
              predicted(default_interval), 4),
          f"small_interval_{small}_predicted": round(predicted(small), 3),
          f"small_interval_{small}_measured_from_step_times": round(
              100 * float(np.mean(gaps)) / (small * step_seconds), 3)
              if gaps else None,
      },
      "restore": {"latest_readable_seconds": round(verify_seconds, 3),
                  "restore_seconds": round(restore_seconds, 3),
                  "checkpoint": prefix},
      "size": {"checkpoint_bytes": ckpt_bytes,
               "weights_bytes": weights_bytes,
               "save_weights_h5_bytes": h5_bytes,
               "checkpoint_over_weights": round(ckpt_bytes / weights_bytes,
                                                3)},
      "workdir": workdir,
  }
  print(json.dumps(summary, indent=2))
  print(bench_common.format_last_line("checkpoint_overhead_percent",
                                      predicted(default_interval)))


if __name__ == "__main__":
  app.run(main)
