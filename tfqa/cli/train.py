"""tfqa_train: fine-tune BERT for SQuAD question answering; re-run to resume.

  tfqa_train --model=minilm-l6 --train_file=train.json --eval_file=dev.json \\
      --model_dir=runs/a
  tfqa_train --model_dir=runs/a          # resume exactly where it stopped
  tfqa_train --model=minilm-l6 --train_file=train.json --eval_file=dev.json \\
      --model_dir=runs/b --init_checkpoint=runs/a --eval_every_steps=500 \\
      --keep_best=f1 --gradient_accumulation_steps=4   # docs/TRAINING.md
"""

from __future__ import annotations

import errno
import functools
import json
import sys

from tfqa.cli import common  # Sets the Keras 2 environment first.

common.hide_pytorch()

from absl import app
from absl import flags

from tfqa import api
from tfqa import config as config_lib
from tfqa import signals
from tfqa.cli import config_flags
from tfqa.layout import paths
from tfqa.layout import rundir

_MODEL_DIR = flags.DEFINE_string(
    "model_dir", None, "Run directory: config, checkpoints, logs, eval outputs.")
# Flag name -> dotted RunConfig field; one flag per field of every section.
FLAG_FIELDS = config_flags.define_flags(config_lib.SECTION_TYPES)
# Output (not run settings: not in run_config.json).
_PROGRESS_EVERY_STEPS = flags.DEFINE_integer(
    "progress_every_steps", config_lib.PROGRESS_EVERY_STEPS,
    "Steps between progress lines when stdout is not a terminal (a terminal "
    "shows Keras' progress bar).", lower_bound=1)

HELP_GROUPS = {"Run": ["model_dir"],
               **config_flags.help_groups(FLAG_FIELDS),
               "Output": ["progress_every_steps"]}


def given_settings(model_dir: str) -> dict:
  """The flags given now, by name: tfqa.train's settings.

  Raises:
    app.UsageError: a new run directory and neither --model nor
      --bert_config_file.
  """
  given = config_flags.section_values(FLAG_FIELDS, only_present=True)
  settings = {name: value for values in given.values()
              for name, value in values.items()}
  if (settings.get("model") is None and
      settings.get("bert_config_file") is None and
      rundir.read_run_config(model_dir) is None):
    raise app.UsageError(
        f"{model_dir} holds no earlier run to resume: pass --model (e.g. "
        f"--model={config_lib.BUNDLED_MODEL_NAME}) or --bert_config_file, "
        f"and --train_file or --tfds_dataset. (It has no "
        f"{rundir.RUN_CONFIG_FILE}; if that file was lost, the run's "
        f"original flags resume it from its checkpoints.)")
  return settings


# Errors of a --model_dir that cannot be written (full disk, quota, file
# size limit, read-only, permissions).
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG,
                           errno.EROFS, errno.EACCES, errno.EPERM})


def main(argv, *, hooks=None):
  """Trains; `hooks` (training.TrainingHooks) is the seam for test tools."""
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _MODEL_DIR.value:
    raise app.UsageError("--model_dir is required.")
  try:
    paths.check_path(_MODEL_DIR.value, paths.OUTPUT_DIRECTORY,
                     argument="model_dir",
                     what="a run directory (created if absent)")
    result = api.train(model_dir=_MODEL_DIR.value,
                       progress_every_steps=_PROGRESS_EVERY_STEPS.value,
                       hooks=hooks, **given_settings(_MODEL_DIR.value))
  except signals.TrainingInterrupted as e:
    # SIGTERM (preemption) or SIGINT: the step was saved; say so, exit as
    # the signal would (143, 130) so schedulers see a preemption.
    print(f"tfqa_train: {e}", file=sys.stderr, flush=True)
    signals.exit_now(e.exit_code)
  print(json.dumps({"global_step": result.global_step,
                    "checkpoint": result.checkpoint,
                    **({"initialized_from": result.initialized_from}
                       if result.initialized_from else {}),
                    **({"best_checkpoint": result.best_checkpoint}
                       if result.best_checkpoint else {}),
                    "metrics": result.metrics}, indent=2))


def describe(error: Exception) -> str | None:
  """tfqa_train's wording of a --model_dir it cannot write (full disk,
  permissions); None: the error's own message says it all."""
  if isinstance(error, OSError) and error.errno in _WRITE_ERRNOS:
    # Not a checkpoint (that error says it all): run_config.json, the
    # tokenizer, the step log or the eval outputs.
    return (f"cannot write in --model_dir={_MODEL_DIR.value}: {error}. Files "
            f"written before are untouched; free disk space or make the "
            f"directory writable, then re-run the same command to resume.")
  return None


def run(hooks=None):
  """The tfqa_train entry point; tools pass `hooks` (training.TrainingHooks)."""
  common.run_tool(functools.partial(main, hooks=hooks), __doc__, HELP_GROUPS,
                  describe=describe)


if __name__ == "__main__":
  run()
