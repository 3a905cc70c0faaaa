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

from absl import app
from absl import flags

from tfqa import config as config_lib

_M = {f.name: f.default for f in config_lib.dataclasses.fields(
    config_lib.ModelConfig)}
_D, _F = config_lib.DataConfig(), config_lib.FeatureConfig()
_P, _DEC, _T = (config_lib.PipelineConfig(), config_lib.DecodeConfig(),
                config_lib.TrainConfig())

_MODEL_DIR = flags.DEFINE_string(
    "model_dir", None, "Run directory: config, checkpoints, logs, eval outputs.")
# Data.
flags.DEFINE_string("train_file", _D.train_file, "SQuAD JSON to train on.")
flags.DEFINE_string("eval_file", _D.eval_file,
                    "SQuAD JSON evaluated after training (and every "
                    "--eval_every_steps).")
flags.DEFINE_enum("tfds_dataset", _D.tfds_dataset, ["squad/v1.1", "squad/v2.0"],
                  "Train on this TFDS dataset instead of --train_file.")
flags.DEFINE_string("tfds_data_dir", _D.tfds_data_dir,
                    "TFDS data_dir holding the prepared dataset.")
flags.DEFINE_bool("answerable_only", _D.answerable_only,
                  "Drop unanswerable training questions (v1.1-style run).")
# Model.
flags.DEFINE_string("model", _M["model"],
                    f"Pretrained encoder: save_pretrained dir, dir with "
                    f"model.safetensors, hub name, or "
                    f"'{config_lib.BUNDLED_MODEL_NAME}' (bundled MiniLM).")
flags.DEFINE_string("bert_config_file", _M["bert_config_file"],
                    "BERT config JSON for a randomly initialised encoder.")
flags.DEFINE_string("vocab_file", _M["vocab_file"],
                    "vocab.txt or tokenizer dir (default: the model's own).")
flags.DEFINE_bool("do_lower_case", _M["do_lower_case"],
                  "Lower-case inputs (default: what the tokenizer says).")
# Windows and answers.
flags.DEFINE_integer("max_seq_length", _F.max_seq_length,
                     "Tokens per window.")
flags.DEFINE_integer("doc_stride", _F.doc_stride,
                     "Context tokens between window starts.")
flags.DEFINE_integer("max_query_length", _F.max_query_length,
                     "Question tokens kept.")
flags.DEFINE_enum("padding", _P.padding, list(config_lib.PADDING_MODES),
                  "Batching: width_buckets | bucketed | dynamic | "
                  "max_length (see README, 'Batching').")
flags.DEFINE_integer("pad_to_multiple_of", _P.pad_to_multiple_of,
                     "Round padded lengths up to a multiple of this.")
flags.DEFINE_bool("version_2_with_negative", _DEC.version_2_with_negative,
                  "SQuAD v2.0: questions may have no answer.")
flags.DEFINE_integer("n_best_size", _DEC.n_best_size,
                     "Start/end candidates per window when decoding.")
flags.DEFINE_integer("max_answer_length", _DEC.max_answer_length,
                     "Longest answer in word pieces.")
flags.DEFINE_float("null_score_diff_threshold",
                   _DEC.null_score_diff_threshold,
                   "v2.0: predict no answer when null beats best span by more.")
flags.DEFINE_enum("span_scoring", _DEC.span_scoring,
                  list(config_lib.SPAN_SCORINGS),
                  "logits: a span scores start + end logit, compared across "
                  "windows (the original BERT); pipeline: per-window softmax "
                  "probabilities, as transformers' question-answering "
                  "pipeline.")
# Optimisation.
flags.DEFINE_integer("train_batch_size", _T.train_batch_size,
                     "Windows per optimizer step: all replicas and "
                     "micro-batches together.")
flags.DEFINE_integer("eval_batch_size", _T.eval_batch_size,
                     "Windows per eval batch.")
flags.DEFINE_float("learning_rate", _T.learning_rate, "Peak learning rate.")
flags.DEFINE_integer("num_train_epochs", _T.num_train_epochs,
                     "Epochs (may be raised on resume to extend a run).")
flags.DEFINE_integer("max_steps", _T.max_steps,
                     "Stop after this many steps (0: all epochs).")
flags.DEFINE_float("warmup_ratio", _T.warmup_ratio,
                   "Share of steps with linear LR warmup.")
flags.DEFINE_float("weight_decay", _T.weight_decay,
                   "AdamW weight decay (not on LayerNorm/bias).")
flags.DEFINE_float("clip_norm", _T.clip_norm,
                   "Global gradient norm clip (0: off, the default; see "
                   "BENCHMARKS.md, quality study).")
flags.DEFINE_float("adam_epsilon", _T.adam_epsilon,
                   "Adam epsilon (the transformers recipe uses 1e-8).")
flags.DEFINE_integer("seed", _T.seed, "Seed for init, data order, dropout.")
# Checkpoints.
flags.DEFINE_integer("save_every_steps", _T.save_every_steps,
                     "Checkpoint interval in steps (also at each epoch end).")
flags.DEFINE_integer("keep_checkpoints", _T.keep_checkpoints,
                     "Checkpoints kept.")
flags.DEFINE_bool("deterministic", _T.deterministic,
                  "Op determinism: resumed runs are bit-identical.")
# Longer runs.
flags.DEFINE_integer("eval_every_steps", _T.eval_every_steps,
                     "Evaluate on the eval data every N steps during "
                     "training, to eval/step-N/ and logs/eval/ (0: only at "
                     "the end).")
flags.DEFINE_enum("keep_best", _T.keep_best,
                  list(config_lib.KEEP_BEST_METRICS),
                  "Keep the best checkpoint by this eval metric in best/, "
                  "outside the rotation (tfqa_export --checkpoint=best).")
flags.DEFINE_string("init_checkpoint", _M["init_checkpoint"],
                    "Warm start from the weights of a run dir or checkpoint "
                    "prefix: fresh optimizer, step 0 (not a resume).")
flags.DEFINE_integer("gradient_accumulation_steps",
                     _T.gradient_accumulation_steps,
                     "Micro-batches per optimizer step (divides "
                     "--train_batch_size; less memory, same update).")
# Runtime.
flags.DEFINE_enum("distribution_strategy", _T.distribution_strategy,
                  list(config_lib.DISTRIBUTION_STRATEGIES),
                  "tf.distribute strategy.")
flags.DEFINE_string("tpu", _T.tpu, "TPU address for --distribution_strategy=tpu.")
flags.DEFINE_bool("jit_compile", _T.jit_compile,
                  "Compile the train step with XLA.")
flags.DEFINE_enum("mixed_precision", _T.mixed_precision,
                  list(config_lib.MIXED_PRECISION_POLICIES),
                  "Keras mixed precision policy.")
# Output (not run settings: not in run_config.json).
_PROGRESS_EVERY_STEPS = flags.DEFINE_integer(
    "progress_every_steps", config_lib.PROGRESS_EVERY_STEPS,
    "Steps between progress lines when stdout is not a terminal (a terminal "
    "shows Keras' progress bar).", lower_bound=1)

# Flag name -> dotted RunConfig field.
FLAG_FIELDS = {
    "train_file": "data.train_file", "eval_file": "data.eval_file",
    "tfds_dataset": "data.tfds_dataset", "tfds_data_dir": "data.tfds_data_dir",
    "answerable_only": "data.answerable_only",
    "model": "model.model", "bert_config_file": "model.bert_config_file",
    "vocab_file": "model.vocab_file", "do_lower_case": "model.do_lower_case",
    "init_checkpoint": "model.init_checkpoint",
    "max_seq_length": "features.max_seq_length",
    "doc_stride": "features.doc_stride",
    "max_query_length": "features.max_query_length",
    "padding": "pipeline.padding",
    "pad_to_multiple_of": "pipeline.pad_to_multiple_of",
    "version_2_with_negative": "decode.version_2_with_negative",
    "n_best_size": "decode.n_best_size",
    "max_answer_length": "decode.max_answer_length",
    "null_score_diff_threshold": "decode.null_score_diff_threshold",
    "span_scoring": "decode.span_scoring",
    **{name: f"train.{name}" for name in (
        "train_batch_size", "eval_batch_size", "learning_rate",
        "num_train_epochs", "max_steps", "warmup_ratio", "weight_decay",
        "clip_norm", "adam_epsilon", "seed", "save_every_steps", "keep_checkpoints",
        "deterministic", "distribution_strategy", "tpu", "jit_compile",
        "mixed_precision", "eval_every_steps", "keep_best",
        "gradient_accumulation_steps")},
}

HELP_GROUPS = {
    "Run": ["model_dir"],
    "Data": ["train_file", "eval_file", "tfds_dataset", "tfds_data_dir",
             "answerable_only"],
    "Model": ["model", "bert_config_file", "vocab_file", "do_lower_case"],
    "Windows and answers": ["max_seq_length", "doc_stride",
                            "max_query_length", "padding",
                            "pad_to_multiple_of", "version_2_with_negative",
                            "n_best_size", "max_answer_length",
                            "null_score_diff_threshold",
                            "span_scoring"],
    "Optimisation": ["train_batch_size", "eval_batch_size", "learning_rate",
                     "num_train_epochs", "max_steps", "warmup_ratio",
                     "weight_decay", "clip_norm", "adam_epsilon", "seed"],
    "Checkpoints": ["save_every_steps", "keep_checkpoints", "deterministic"],
    "Longer runs": [
        "eval_every_steps", "keep_best", "init_checkpoint",
        "gradient_accumulation_steps"],
    "Runtime": ["distribution_strategy", "tpu", "jit_compile",
                "mixed_precision"],
    "Output": ["progress_every_steps"],
}


def build_run_config(model_dir: str) -> config_lib.RunConfig:
  """The run's config: the saved one plus flags given now, or all flags."""
  from tfqa import rundir  # pylint: disable=import-outside-toplevel

  given = {FLAG_FIELDS[name]: common.FLAGS[name].value
           for name in common.present_flags(FLAG_FIELDS)}
  saved = rundir.read_run_config(model_dir)
  if saved is not None:
    return rundir.with_overrides(saved, given)
  values = {field: common.FLAGS[name].value
            for name, field in FLAG_FIELDS.items()}
  sections = {}
  for field, value in values.items():
    section, _, name = field.partition(".")
    sections.setdefault(section, {})[name] = value
  if sections["model"]["model"] is None and sections["model"][
      "bert_config_file"] is None:
    raise app.UsageError(
        f"{model_dir} holds no earlier run to resume: pass --model (e.g. "
        f"--model={config_lib.BUNDLED_MODEL_NAME}) or --bert_config_file, "
        f"and --train_file or --tfds_dataset. (It has no "
        f"{rundir.RUN_CONFIG_FILE}; if that file was lost, the run's "
        f"original flags resume it from its checkpoints.)")
  classes = {"model": config_lib.ModelConfig, "data": config_lib.DataConfig,
             "features": config_lib.FeatureConfig,
             "pipeline": config_lib.PipelineConfig,
             "decode": config_lib.DecodeConfig,
             "train": config_lib.TrainConfig}
  return config_lib.RunConfig(**{
      section: classes[section](**kwargs)
      for section, kwargs in sections.items()})


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
  from tfqa import paths  # pylint: disable=import-outside-toplevel
  from tfqa import preflight  # pylint: disable=import-outside-toplevel
  try:
    paths.check_path(_MODEL_DIR.value, paths.OUTPUT_DIRECTORY,
                     flag="--model_dir",
                     what="a run directory (created if absent)")
    run_config = build_run_config(_MODEL_DIR.value)
    # Before TensorFlow is imported: wrong inputs fail at once.
    preflight.check_train(run_config, _MODEL_DIR.value)
    from tfqa import training  # pylint: disable=import-outside-toplevel
    result = training.train_and_evaluate(
        run_config, _MODEL_DIR.value,
        progress_every_steps=_PROGRESS_EVERY_STEPS.value, hooks=hooks)
  except OSError as e:
    if e.errno in _WRITE_ERRNOS:
      # Not a checkpoint (that error says it all): run_config.json, the
      # tokenizer, the step log or the eval outputs.
      sys.exit(f"tfqa_train: error: cannot write in --model_dir="
               f"{_MODEL_DIR.value}: {e}. Files written before are untouched; "
               f"free disk space or make the directory writable, then re-run "
               f"the same command to resume.")
    sys.exit(f"tfqa_train: error: {e}")
  except ValueError as e:
    # A clear one-paragraph error, not a traceback, for bad input.
    sys.exit(f"tfqa_train: error: {e}")
  print(json.dumps({"global_step": result.global_step,
                    "checkpoint": result.checkpoint,
                    **({"initialized_from": result.initialized_from}
                       if result.initialized_from else {}),
                    **({"best_checkpoint": result.best_checkpoint}
                       if result.best_checkpoint else {}),
                    "metrics": result.metrics}, indent=2))


def run(hooks=None):
  """The tfqa_train entry point; tools pass `hooks` (training.TrainingHooks)."""
  common.run_tool(functools.partial(main, hooks=hooks), __doc__, HELP_GROUPS)


if __name__ == "__main__":
  run()
