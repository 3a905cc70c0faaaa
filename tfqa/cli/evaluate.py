"""tfqa_eval: evaluate a checkpoint of a tfqa_train run on a SQuAD file.

  tfqa_eval --model_dir=runs/a [--eval_file=dev.json] [--checkpoint=PREFIX]
"""

from __future__ import annotations

import json

from tfqa.cli import common

common.hide_pytorch()

from absl import app
from absl import flags

from tfqa import api

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "A tfqa_train run.")
_EVAL_FILE = flags.DEFINE_string(
    "eval_file", None, "SQuAD JSON (default: the run's --eval_file).")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Checkpoint prefix, or 'best': the run's --keep_best "
    "checkpoint (default: newest readable).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where to write outputs (default: "
    "MODEL_DIR/eval/<checkpoint>).")

HELP_GROUPS = {"Options": ["model_dir", "eval_file", "checkpoint",
                           "output_dir"]}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _MODEL_DIR.value:
    raise app.UsageError("--model_dir is required.")
  result = api.evaluate(_MODEL_DIR.value, eval_file=_EVAL_FILE.value,
                        checkpoint=_CHECKPOINT.value,
                        output_dir=_OUTPUT_DIR.value)
  print(json.dumps({"output_dir": result.output_dir,
                    "metrics": result.metrics}, indent=2))


def run():
  common.run_tool(main, __doc__, HELP_GROUPS)


if __name__ == "__main__":
  run()
