"""The pretrained directory's README.md (model card): metadata and model-index, data, settings, results, checks, usage."""

from __future__ import annotations

import dataclasses
import json
import os

import huggingface_hub

import tfqa
from tfqa import config as config_lib
from tfqa.inference import run_evaluation
from tfqa.inference import trained_model
from tfqa.layout import best_checkpoint
from tfqa.layout import fs
from tfqa.layout import json_files
from tfqa.layout import rundir
from tfqa.model import source as model_source

# The Hugging Face dataset ids of SQuAD, by version (v2.0: True).
_SQUAD_HUB_IDS = {False: "rajpurkar/squad", True: "rajpurkar/squad_v2"}
# Official SQuAD file names: data read from them is SQuAD itself.
_SQUAD_FILES = {"train-v1.1.json": False, "dev-v1.1.json": False,
                "train-v2.0.json": True, "dev-v2.0.json": True}
# The hub model the bundled encoder is an offline copy of.
_BUNDLED_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Evaluation results -> (model-index metric type, name); v2.0 adds HasAns/NoAns.
_METRICS = (("exact", "exact_match", "Exact match"), ("f1", "f1", "F1"))
_V2_METRICS = (
    ("HasAns_exact", "exact_match", "HasAns exact match"),
    ("HasAns_f1", "f1", "HasAns F1"),
    ("NoAns_exact", "exact_match", "NoAns exact match"),
    ("NoAns_f1", "f1", "NoAns F1"))
# Results that are not metrics, or are paths (never in a card).
_NOT_METRICS = ("checkpoint", "eval_file", "global_step")
# The question the usage snippets ask.
EXAMPLE_QUESTION = "What forms in a cloud?"
EXAMPLE_CONTEXT = ("Precipitation forms as smaller droplets coalesce via "
                   "collision with other rain drops or ice crystals within a "
                   "cloud.")
# Headings of the usage sections (tests run the code block under each).
TRANSFORMERS_USAGE_HEADING = "### transformers 5 + PyTorch"
SAVED_MODEL_USAGE_HEADING = "### TF Serving SavedModel"
TF_USAGE_HEADING = "### transformers 4.57 + TensorFlow"


def model_card(trained: trained_model.TrainedModel, *, model_name: str,
               version: int, verification: dict,
               threshold: dict | None = None,
               license_id: str = config_lib.ExportConfig.license) -> str:
  """The pretrained directory's README.md (a huggingface_hub.ModelCard).

  Metadata: base_model, datasets, license, pipeline_tag and a model-index
  with the exported checkpoint's EM/F1 (HasAns/NoAns for v2.0). Body: data,
  settings, results, verification and usage snippets that run as written
  from the export directory. No local paths: files are named by their
  base names, models by hub ids.
  """
  run_config = trained.run_config
  version_2 = run_config.decode.version_2_with_negative
  found = evaluation_of(trained.model_dir, trained.checkpoint)
  data = huggingface_hub.ModelCardData(
      language="en", license=license_id, library_name="transformers",
      pipeline_tag="question-answering",
      tags=["tfqa", "bert", "question-answering", "squad", "tensorflow",
            "pytorch", "safetensors"],
      base_model=_base_model(run_config.model),
      datasets=_training_datasets(run_config.data),
      model_name=model_name,
      eval_results=(_eval_results(run_config.data, version_2, found[2])
                    if found else None))
  body = _body(trained, model_name=model_name, version=version,
               verification=verification, threshold=threshold, found=found)
  card = huggingface_hub.ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
  return str(card)


def _body(trained, *, model_name, version, verification, threshold, found):
  """The card's Markdown below the metadata."""
  run_config = trained.run_config
  lines = [
      f"# {model_name} (version {version})",
      "",
      f"BERT fine-tuned for extractive question answering with tfqa "
      f"{tfqa.__version__} (TensorFlow, `TFBertForQuestionAnswering`), "
      f"exported from checkpoint `{os.path.basename(trained.checkpoint)}`. "
      f"This directory loads in transformers 5 and PyTorch "
      f"(`model.safetensors`, `BertForQuestionAnswering`) and in "
      f"transformers 4.57 with TensorFlow (`tf_model.h5`).",
      *_best_checkpoint_line(trained),
      *_data_section(run_config),
      *_model_section(run_config.model),
      *_settings_section(run_config),
      *_evaluation_section(trained, found),
      *_threshold_section(threshold),
      *_verification_section(verification),
      "", "## Usage", "",
      "Run from the export directory (the one holding `pretrained/`, "
      "`saved_model/` and `manifest.json`); after uploading "
      "`pretrained/` to the Hugging Face Hub, use its repo id instead "
      "of `\"pretrained\"`.", "",
      *usage_snippets(
          model_name=model_name, version=version, run_config=run_config,
          threshold=(threshold["value"] if threshold is not None else
                     run_config.decode.null_score_diff_threshold))]
  return "\n".join(lines) + "\n"


def _data_section(run_config):
  data = run_config.data
  lines = ["", "## Training data", ""]
  if data.tfds_dataset:
    lines.append(f"- TFDS dataset: `{data.tfds_dataset}` (train split)")
  if data.train_file:
    lines.append(f"- Train file: `{os.path.basename(data.train_file)}`")
  lines.append(f"- Eval file: `{os.path.basename(data.eval_file)}`"
               if data.eval_file else
               "- Eval file: none" + (" (TFDS validation split)"
                                      if data.tfds_dataset else ""))
  lines.append("- Format: SQuAD " + (
      "v2.0 (unanswerable questions get an empty answer)"
      if run_config.decode.version_2_with_negative else "v1.1"))
  if data.answerable_only:
    lines.append("- Unanswerable training questions dropped "
                 "(answerable_only)")
  return lines


def _model_section(model):
  lines = ["", "## Model", "", f"- Initialised from: {_origin(model)}"]
  if model.init_checkpoint:
    lines.append("- Warm-started from the weights of another tfqa run "
                 "(--init_checkpoint)")
  return lines


def _settings_section(run_config):
  lines = ["", "## Hyper-parameters", "", "| setting | value |", "|---|---|"]
  for section in ("train", "features", "pipeline", "decode"):
    for name, value in dataclasses.asdict(getattr(run_config,
                                                  section)).items():
      lines.append(f"| {section}.{name} | {value} |")
  return lines


def _evaluation_section(trained, found):
  lines = ["", "## Evaluation", ""]
  if found is None:
    lines.append(
        f"No evaluation of this checkpoint (step "
        f"{rundir.checkpoint_step(trained.checkpoint)}) was recorded; "
        f"`tfqa_eval --model_dir=... --checkpoint=...` makes one.")
    return lines
  path, when, results = found
  lines += [f"Recorded {when} "
            f"(`{os.path.relpath(path, trained.model_dir)}` of the run), "
            f"on `{_eval_data_name(trained.run_config.data)}`.", "",
            "| metric | value |", "|---|---|"]
  lines += [f"| {key} | {_format_value(value)} |"
            for key, value in results.items() if key not in _NOT_METRICS]
  return lines


def _threshold_section(threshold):
  if threshold is None:
    return []
  return ["", "## No-answer threshold", "",
          f"The model answers nothing when the no-answer score beats "
          f"the best span's score by more than "
          f"**{threshold['value']:.6g}** "
          f"(decode.null_score_diff_threshold; source: "
          f"{threshold['source']}). The run, and its evaluation above, "
          f"used {threshold['run_value']:.6g}."]


def _verification_section(verification):
  lines = ["", "## Export verification", ""]
  if verification.get("skipped"):
    lines.append("Not verified (exported with --noverify).")
    return lines
  lines.append(
      f"On {verification['probe_questions']} questions of "
      f"`{os.path.basename(verification['probe_source'])}`: max |logit "
      f"difference| "
      + ", ".join(f"{pair} {diff:.2g}" for pair, diff in
                  verification["logits_max_abs_diff"].items())
      + f"; every tensor of model.safetensors equals its TF variable; the "
      f"SavedModel's serving_default answers equal the Python answers on "
      f"{verification['answer_agreement']:.1%} of the questions.")
  return lines


def usage_snippets(*, model_name: str, version: int,
                   run_config: config_lib.RunConfig,
                   threshold: float) -> list[str]:
  """Markdown lines: code that loads this export, one section per runtime."""
  cut = EXAMPLE_CONTEXT.rindex(" ", 0, 60) + 1
  example = [f"question = {json.dumps(EXAMPLE_QUESTION)}",
             f"context = ({json.dumps(EXAMPLE_CONTEXT[:cut])}",
             f"           {json.dumps(EXAMPLE_CONTEXT[cut:])})"]
  return [*_pytorch_usage(run_config, threshold, example),
          *_saved_model_usage(model_name, version, example),
          *_tf_usage(run_config, example)]


def _pytorch_usage(run_config, threshold, example):
  """transformers 5 + PyTorch: one window, decoded by hand."""
  max_answer_length = run_config.decode.max_answer_length
  return [
      TRANSFORMERS_USAGE_HEADING, "",
      "```python",
      "import torch",
      "from transformers import AutoModelForQuestionAnswering, AutoTokenizer",
      "",
      "model = AutoModelForQuestionAnswering.from_pretrained(\"pretrained\")",
      "tokenizer = AutoTokenizer.from_pretrained(\"pretrained\")",
      *example,
      "# One window of the run's length; a longer context is cut.",
      "inputs = tokenizer(question, context, truncation=True,",
      f"                   max_length={run_config.features.max_seq_length}, "
      "return_offsets_mapping=True,",
      "                   return_tensors=\"pt\")",
      "offsets = inputs.pop(\"offset_mapping\")[0].tolist()",
      "in_context = torch.tensor([i == 1 for i in inputs.sequence_ids(0)])",
      "with torch.no_grad():",
      "  out = model(**inputs)",
      "start, end = out.start_logits[0], out.end_logits[0]",
      f"# The best span of the context, at most "
      f"{max_answer_length} tokens long.",
      "scores = start[:, None] + end[None, :]",
      "allowed = in_context[:, None] & in_context[None, :]",
      "allowed &= torch.ones_like(allowed).triu() & "
      f"~torch.ones_like(allowed).triu({max_answer_length})",
      "scores[~allowed] = float(\"-inf\")",
      "first, last = divmod(int(scores.argmax()), scores.shape[1])",
      *_no_answer_lines(run_config, threshold),
      "```", "",
      "transformers 5.3 and later have no `pipeline(\"question-answering\")` "
      "(upstream removed the extractive QA pipeline), so this decodes the "
      "logits itself: one window of the context, where tfqa's SavedModel "
      "slides windows over long contexts. With transformers 4.x or 5.0-5.2 "
      "and PyTorch, `pipeline(\"question-answering\", model=\"pretrained\")` "
      "works too.", ""]


def _no_answer_lines(run_config, threshold):
  """The PyTorch snippet's last lines: print the span (or, v2.0, none)."""
  if not run_config.decode.version_2_with_negative:
    return ["print(context[offsets[first][0]:offsets[last][1]])"]
  return [f"# SQuAD v2.0: no answer when the empty span beats the best "
          f"by more than {threshold:g}.",
          f"if start[0] + end[0] - scores[first, last] > {threshold!r}:",
          "  print(\"(no answer)\")",
          "else:",
          "  print(context[offsets[first][0]:offsets[last][1]])"]


def _saved_model_usage(model_name, version, example):
  """The TF Serving SavedModel, raw text in, answer out."""
  return [
      SAVED_MODEL_USAGE_HEADING, "",
      "```python",
      "import tensorflow as tf",
      "import tensorflow_text  # registers the tokenizer ops the graph uses",
      "",
      f"model = tf.saved_model.load(\"saved_model/{model_name}/{version}\")",
      *example,
      "answer = model.signatures[\"serving_default\"](",
      "    question=tf.constant([question]), context=tf.constant([context]))",
      "print(answer[\"answer\"].numpy()[0].decode(), "
      "float(answer[\"score\"][0]))",
      "```", "",
      "Signature `serving_default`: strings `question`, `context` -> "
      "`answer`, `score`, `start_char`, `end_char`; TF Serving serves "
      f"`saved_model/{model_name}` as model `{model_name}`.", ""]


def _tf_usage(run_config, example):
  """transformers 4.57 + TensorFlow: the question-answering pipeline with
  the run's window settings."""
  features = run_config.features
  # The pipeline's doc_stride is the overlap of windows, tfqa's the step.
  overlap = max(0, features.max_seq_length - features.max_query_length - 3 -
                features.doc_stride)
  version_2 = run_config.decode.version_2_with_negative
  return [
      TF_USAGE_HEADING, "",
      "```python",
      "import transformers",
      "",
      "# use_safetensors=False: 4.57's TF loader would pick the PyTorch",
      "# model.safetensors and fail; tf_model.h5 holds the same weights.",
      "model = transformers.TFBertForQuestionAnswering.from_pretrained(",
      "    \"pretrained\", use_safetensors=False)",
      "# dtype=None: 4.57's pipeline would import torch otherwise.",
      "qa = transformers.pipeline(\"question-answering\", model=model,",
      "                           tokenizer=\"pretrained\", framework=\"tf\",",
      "                           dtype=None)",
      *example,
      "print(qa(question=question, context=context,",
      f"         max_seq_len={features.max_seq_length}, "
      f"doc_stride={overlap}, "
      f"max_question_len={features.max_query_length},",
      f"         max_answer_len={run_config.decode.max_answer_length}"
      + (", handle_impossible_answer=True))" if version_2 else "))"),
      "```", ""]


def _base_model(model: config_lib.ModelConfig) -> str | None:
  """The hub id the run started from; None for a local directory or config."""
  if model.bert_config_file is not None or not model.model:
    return None
  if model.model == config_lib.BUNDLED_MODEL_NAME:
    return _BUNDLED_BASE_MODEL
  if fs.exists(model.model) or not model_source.is_hub_name(model.model):
    return None
  return model.model


def _origin(model: config_lib.ModelConfig) -> str:
  """Where the weights came from, in words (no local path)."""
  base = _base_model(model)
  if base is not None:
    return f"`{base}` (Hugging Face Hub)"
  if model.bert_config_file is not None:
    return "a BERT config (random initialisation)"
  return "a local pretrained directory"


def _squad_version_of(name: str | None):
  """True/False (v2.0/v1.1) when `name` is SQuAD itself, else None."""
  if name is None:
    return None
  if name in config_lib.TFDS_NAMES:
    return name.endswith("v2.0")
  return _SQUAD_FILES.get(os.path.basename(name))


def _training_datasets(data: config_lib.DataConfig):
  """The hub ids of the training data, when it is SQuAD itself; else None."""
  source = data.tfds_dataset or data.train_file
  found = _squad_version_of(source)
  return None if found is None else [_SQUAD_HUB_IDS[found]]


def _eval_data_name(data: config_lib.DataConfig) -> str:
  if data.eval_file:
    return os.path.basename(data.eval_file)
  return f"{data.tfds_dataset} (validation split)"


def _eval_results(data: config_lib.DataConfig, version_2: bool,
                  results: dict) -> list:
  """model-index entries for the evaluation results of the checkpoint."""
  found = _squad_version_of(data.eval_file or data.tfds_dataset)
  dataset_type = _SQUAD_HUB_IDS[found] if found is not None else "json"
  metrics = _METRICS + (_V2_METRICS if version_2 else ())
  return [huggingface_hub.EvalResult(
              task_type="question-answering",
              task_name="Extractive question answering",
              dataset_type=dataset_type, dataset_name=_eval_data_name(data),
              dataset_split="validation", metric_type=metric_type,
              metric_name=name, metric_value=round(float(results[key]), 4))
          for key, metric_type, name in metrics if key in results]


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
    path = os.path.join(directory, run_evaluation.RESULTS_FILE)
    if not fs.isfile(path):
      continue
    results = json_files.read_json(path, what="the evaluation results")
    if _step_of_results(results) == step:
      return path, when, results
  return None


def _step_of_results(results):
  if "global_step" in results:
    return results["global_step"]
  return rundir.checkpoint_step(str(results.get("checkpoint", "")))


def _format_value(value):
  return f"{value:.4g}" if isinstance(value, float) else str(value)
