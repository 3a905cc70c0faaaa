"""Fine-tunes the bundled MiniLM on four articles of the shared real SQuAD sample, evaluates on the fifth.

  .venv/bin/python benchmarks/finetune_real_sample.py [--num_train_epochs=3]

Answerable questions only (SQuAD v1.1-style). Prints EM/F1 on the held-out
article and training throughput (windows/s and questions/s, measured over the
fit loop, checkpoint saves included). Last line: `heldout_f1=<F1>`.
"""

import json
import os

from tfqa.cli import common  # pylint: disable=unused-import

from absl import app
from absl import flags

from tfqa import config
from tfqa.training import trainer

import bench_common

_DATA = flags.DEFINE_string(
    "data", bench_common.SHARED_SAMPLE,
    "The shared real-data sample (SQuAD v2.0 dev, 5 articles).")
_EPOCHS = flags.DEFINE_integer("num_train_epochs", 3, "Epochs.")
_BATCH = flags.DEFINE_integer("train_batch_size", 16, "Batch size.")
_LR = flags.DEFINE_float("learning_rate", 3e-4, "Peak learning rate.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Default: a temp dir.")
_TINY = flags.DEFINE_bool("tiny", False, "Smoke mode: 30 questions, 2 steps.")


def main(argv):
  del argv
  workdir, train_file, heldout_file, train_titles, heldout_titles = (
      bench_common.split_in_workdir(_DATA.value, _WORKDIR.value,
                                    temp_prefix="tfqa-bench-",
                                    tiny=_TINY.value))
  run_config = config.RunConfig(
      model=config.ModelConfig(model=config.BUNDLED_MODEL_NAME),
      data=config.DataConfig(train_file=train_file, eval_file=heldout_file),
      train=config.TrainConfig(
          train_batch_size=_BATCH.value, learning_rate=_LR.value,
          num_train_epochs=_EPOCHS.value, max_steps=2 if _TINY.value else 0,
          seed=1))
  result = trainer.train_and_evaluate(run_config,
                                       os.path.join(workdir, "run"),
                                       verbose=2)
  questions = sum(len(p["qas"]) for a in json.load(open(train_file))["data"]
                  for p in a["paragraphs"])
  summary = {
      "train_articles": train_titles, "heldout_articles": heldout_titles,
      "train_questions": questions, "epochs": _EPOCHS.value,
      "steps": result.steps_run, "windows_trained": result.windows_run,
      "train_seconds": round(result.train_seconds, 1),
      "windows_per_second": round(result.windows_run / result.train_seconds,
                                  2),
      # Each question is seen once per epoch (through one or more windows).
      "questions_per_second": round(
          questions * result.steps_run / result.total_steps * _EPOCHS.value
          / result.train_seconds, 2),
      "heldout": result.metrics,
  }
  print(json.dumps(summary, indent=2))
  print(f"heldout_f1={result.metrics['f1']:.2f}")


if __name__ == "__main__":
  app.run(main)
