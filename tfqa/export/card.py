"""The pretrained directory's README.md (model card): data, settings, results, checks."""

from __future__ import annotations

import dataclasses
import os

import tfqa
from tfqa import best_checkpoint
from tfqa import evaluation
from tfqa import io_utils
from tfqa import rundir
from tfqa import trained_model
from tfqa.layout import fs


def model_card(trained: trained_model.TrainedModel, *, model_name: str,
               version: int, verification: dict,
               threshold: dict | None = None) -> str:
  """The pretrained directory's README.md: data, settings, results, checks."""
  run_config = trained.run_config
  data = run_config.data
  model = run_config.model
  lines = [
      "---",
      "library_name: transformers",
      "pipeline_tag: question-answering",
      "tags: [tfqa, bert, question-answering, squad, tensorflow]",
      "---",
      "",
      f"# {model_name} (version {version})",
      "",
      f"`TFBertForQuestionAnswering` fine-tuned for extractive question "
      f"answering with tfqa {tfqa.__version__}, exported from checkpoint "
      f"`{os.path.basename(trained.checkpoint)}`.",
      *_best_checkpoint_line(trained),
      "",
      "## Training data",
      "",
  ]
  if data.tfds_dataset:
    lines.append(f"- TFDS dataset: `{data.tfds_dataset}` (train split)")
  if data.train_file:
    lines.append(f"- Train file: `{data.train_file}`")
  lines.append(f"- Eval file: `{data.eval_file}`" if data.eval_file else
               "- Eval file: none" + (" (TFDS validation split)"
                                      if data.tfds_dataset else ""))
  lines.append("- Format: SQuAD " + (
      "v2.0 (unanswerable questions get an empty answer)"
      if run_config.decode.version_2_with_negative else "v1.1"))
  if data.answerable_only:
    lines.append("- Unanswerable training questions dropped "
                 "(answerable_only)")
  lines += ["", "## Model", "",
            f"- Initialised from: `{model.model or model.bert_config_file}`"]
  if model.init_checkpoint:
    lines.append(f"- Warm-started from the weights of: "
                 f"`{model.init_checkpoint}` (--init_checkpoint)")
  lines += ["", "## Hyper-parameters", "", "| setting | value |",
            "|---|---|"]
  for section in ("train", "features", "pipeline", "decode"):
    for name, value in dataclasses.asdict(getattr(run_config,
                                                  section)).items():
      lines.append(f"| {section}.{name} | {value} |")
  lines += ["", "## Evaluation", ""]
  found = evaluation_of(trained.model_dir, trained.checkpoint)
  if found is None:
    lines.append(
        f"No evaluation of this checkpoint (step "
        f"{rundir.checkpoint_step(trained.checkpoint)}) was recorded; "
        f"`tfqa_eval --model_dir=... --checkpoint=...` makes one.")
  else:
    path, when, results = found
    lines += [f"Recorded {when} "
              f"(`{os.path.relpath(path, trained.model_dir)}`).", "",
              "| metric | value |", "|---|---|"]
    lines += [f"| {key} | {_format_value(value)} |"
              for key, value in results.items()]
  if threshold is not None:
    lines += ["", "## No-answer threshold", "",
              f"The model answers nothing when the no-answer score beats "
              f"the best span's score by more than "
              f"**{threshold['value']:.6g}** "
              f"(decode.null_score_diff_threshold; source: "
              f"{threshold['source']}). The run, and its evaluation above, "
              f"used {threshold['run_value']:.6g}."]
  lines += ["", "## Export verification", ""]
  if verification.get("skipped"):
    lines.append("Not verified (exported with --noverify).")
  else:
    lines.append(
        f"On {verification['probe_questions']} questions of "
        f"`{verification['probe_source']}`: max |logit difference| "
        + ", ".join(f"{pair} {diff:.2g}" for pair, diff in
                    verification["logits_max_abs_diff"].items())
        + f"; the SavedModel's serving_default answers equal the Python "
        f"answers on "
        f"{verification['answer_agreement']:.1%} of the questions.")
  lines += [
      "", "## Usage", "", "```python", "import transformers", "",
      "qa = transformers.pipeline(",
      "    \"question-answering\", model=\"pretrained\", "
      "tokenizer=\"pretrained\",",
      "    framework=\"tf\", dtype=None)  # dtype=None: no PyTorch needed",
      "qa(question=\"...\", context=\"...\")", "```", "",
      f"The TF Serving version of this model is "
      f"`saved_model/{model_name}/{version}` next to this directory "
      f"(signature `serving_default`: strings `question`, `context` -> "
      f"`answer`, `score`, `start_char`, `end_char`).", ""]
  return "\n".join(lines)


def _best_checkpoint_line(trained):
  """[A sentence on whether this is the run's --keep_best checkpoint] or []."""
  line = best_checkpoint.describe(trained.model_dir, trained.checkpoint)
  return ["", line] if line else []


def evaluation_of(model_dir: str,
                  checkpoint: str) -> tuple[str, str, dict] | None:
  """(results file, when it was made, its results) of `checkpoint`'s step.

  None when no evaluation of that step was recorded.

  A run records evaluations in three places: at the end of training
  (eval/eval_results.json, of the final step), during training
  (eval/step-N/) and by tfqa_eval (eval/ckpt-N/). The weights of a step are
  the same in checkpoints/ and best/, so the step decides which results
  describe the exported checkpoint; results of another step never do.
  """
  step = rundir.checkpoint_step(checkpoint)
  eval_dir = os.path.join(model_dir, rundir.EVAL_SUBDIR)
  places = [
      ("at the end of training", eval_dir),
      ("during training", os.path.join(
          eval_dir, rundir.EVAL_STEP_SUBDIR.format(step=step))),
      ("by tfqa_eval", os.path.join(eval_dir, os.path.basename(checkpoint))),
  ]
  for when, directory in places:
    path = os.path.join(directory, evaluation.RESULTS_FILE)
    if not fs.isfile(path):
      continue
    results = io_utils.read_json(path, what="the evaluation results")
    if _step_of_results(results) == step:
      return path, when, results
  return None


def _step_of_results(results):
  if "global_step" in results:
    return results["global_step"]
  return rundir.checkpoint_step(str(results.get("checkpoint", "")))


def _format_value(value):
  return f"{value:.4g}" if isinstance(value, float) else str(value)
