"""tfqa's Python API: train, evaluate, export and answer in one call each (what the tfqa_* commands call)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Sequence

from tfqa import config as config_lib
from tfqa import errors
from tfqa import preflight
from tfqa.layout import best_checkpoint
from tfqa.layout import rundir

# This module is TensorFlow-free, so `import tfqa` and reaching tfqa.train,
# tfqa.RunConfig, ... stay light (tests/test_api.py). Each call imports its
# TensorFlow-backed stage (training, inference, export) inside the function;
# train, evaluate and export after preflight has checked their inputs, so a
# wrong input fails at once, before TensorFlow loads.

# Setting name (a field of one RunConfig section, as the tfqa_train flag of
# the same name) -> its section.
_SETTING_SECTIONS = {field.name: section
                     for section, cls in config_lib.SECTION_TYPES.items()
                     for field in dataclasses.fields(cls)}


def run_config_for(model_dir: str,
                   run_config: config_lib.RunConfig | None = None,
                   **settings) -> config_lib.RunConfig:
  """The config `train` runs with, as tfqa_train builds it from its flags.

  `run_config` with `settings` replacing its fields; without one, the config
  saved in `model_dir` (a resume) with `settings` replacing its fields;
  without either, a new config from `settings` and the defaults.

  Raises:
    ValueError: an unknown setting, an invalid value, a new run with
      neither `model` nor `bert_config_file`, or `num_train_epochs` given
      to a run with a time budget (which chooses the epochs).
  """
  unknown = sorted(set(settings) - set(_SETTING_SECTIONS))
  if unknown:
    raise ValueError(
        f"Invalid argument(s) {unknown}. Expected settings of "
        f"tfqa.RunConfig's sections (see help(tfqa.train)): "
        f"{sorted(_SETTING_SECTIONS)}.")
  result = _with_settings(model_dir, run_config, settings)
  if "num_train_epochs" in settings and result.train.time_budget:
    raise errors.ArgumentError(
        "num_train_epochs", settings["num_train_epochs"],
        "Expected no {num_train_epochs:q} in a run with {time_budget}=" +
        errors.literal(repr(result.train.time_budget)) +
        ", which chooses the epochs when the run starts (and keeps them "
        "on resume). Cap the steps with {max_steps:q}, or give a new run "
        "another budget.",
        refers_to=["num_train_epochs", "time_budget", "max_steps"])
  return result


def _with_settings(model_dir, run_config, settings):
  """run_config_for's config, before the settings are checked together."""
  overrides = {f"{_SETTING_SECTIONS[name]}.{name}": value
               for name, value in settings.items()}
  base = run_config or rundir.read_run_config(model_dir)
  if base is not None:
    return rundir.with_overrides(base, overrides)
  if settings.get("model") is None and settings.get(
      "bert_config_file") is None:
    raise errors.ArgumentNamingError(
        f"{errors.literal(model_dir)} holds no earlier run to resume: pass "
        f"{{model:q}} (e.g. {{model}}={config_lib.BUNDLED_MODEL_NAME!r}) or "
        f"{{bert_config_file:q}}, and {{train_file:q}} or {{tfds_dataset:q}}. "
        f"(It has no {rundir.RUN_CONFIG_FILE}; if that file was lost, the "
        f"run's original settings resume it from its checkpoints.)",
        ["model", "bert_config_file", "train_file", "tfds_dataset"])
  sections = {}
  for name, value in settings.items():
    sections.setdefault(_SETTING_SECTIONS[name], {})[name] = value
  return config_lib.RunConfig(**{
      section: cls(**sections.get(section, {}))
      for section, cls in config_lib.SECTION_TYPES.items()})


def train(run_config: config_lib.RunConfig | None = None, *, model_dir: str,
          callbacks: Sequence = (), verbose: str | int = "auto",
          progress_every_steps: int = config_lib.PROGRESS_EVERY_STEPS,
          hooks=None, **settings):
  """Trains and evaluates a run in `model_dir`; called again, resumes it."""
  run_config = run_config_for(model_dir, run_config, **settings)
  # Before TensorFlow is imported: wrong inputs fail at once.
  source = preflight.check_train(run_config, model_dir)
  # TensorFlow-backed: after the checks (see the top of this module).
  from tfqa.training import trainer  # pylint: disable=import-outside-toplevel
  return trainer.train_and_evaluate(
      run_config, model_dir, callbacks=callbacks, verbose=verbose,
      progress_every_steps=progress_every_steps, hooks=hooks, source=source)


@dataclasses.dataclass(frozen=True)
class EvalResult:
  """What `evaluate` measured and where it wrote its outputs."""

  metrics: dict  # squad_metrics' names: exact, f1, HasAns_f1, best_f1, ...
  output_dir: str  # predictions.json, nbest_predictions.json, eval_results


def evaluate(model_dir: str, *, eval_file: str | None = None,
             checkpoint: str | None = None,
             output_dir: str | None = None) -> EvalResult:
  """Evaluates a checkpoint of a training run on a SQuAD file (as tfqa_eval).

  Args:
    model_dir: a run directory `train` wrote.
    eval_file: SQuAD JSON (default: the run's eval_file).
    checkpoint: checkpoint prefix, or "best" (the run's keep_best
      checkpoint); default: the newest readable one.
    output_dir: where the outputs go (default: MODEL_DIR/eval/<checkpoint>).

  Returns:
    The EvalResult.

  Raises:
    ValueError: a path that is not what it should be, a run without eval
      data and no `eval_file`.
  """
  checkpoint = best_checkpoint.resolve(model_dir, checkpoint)
  checked = preflight.check_eval(model_dir, eval_file=eval_file,
                                 checkpoint=checkpoint, output_dir=output_dir)
  # TensorFlow-backed: after the checks (see the top of this module).
  from tfqa.inference import run_evaluation  # pylint: disable=import-outside-toplevel
  metrics, written = run_evaluation.evaluate_run(
      model_dir, eval_file=eval_file, checkpoint=checkpoint,
      output_dir=output_dir, checked=checked)
  return EvalResult(metrics, written)


def export(model_dir: str, export_dir: str, *,
           checkpoint: str | None = None, probe_file: str | None = None,
           onnx: bool = False, quantize: str | None = None,
           allow_quality_drop: bool = False, **settings):
  """Exports a run for TF Serving, Hugging Face and ONNX (as tfqa_export).

  Writes EXPORT_DIR/saved_model/MODEL_NAME/VERSION, EXPORT_DIR/pretrained
  and EXPORT_DIR/manifest.json, after checking the export against the
  checkpoint; with `onnx`, EXPORT_DIR/onnx/model.onnx.

  Args:
    model_dir: a run directory `train` wrote.
    export_dir: where the export goes.
    checkpoint: checkpoint prefix, or "best" (the run's keep_best
      checkpoint); default: the newest readable one.
    probe_file: SQuAD JSON for verification and warm-up requests (default:
      the run's eval_file, else the bundled sample).
    onnx: also write onnx/model.onnx (the `onnx` extra).
    quantize: "int8": also int8 ONNX and TFLite models, refused when they
      lose more than 1 F1 point on the probe set (implies onnx); None:
      none.
    allow_quality_drop: publish quantized models that lose more.
    **settings: tfqa.ExportConfig fields: model_name, version, overwrite,
      verify, max_windows_per_batch (0: all windows of a request at once),
      no_answer_threshold (a float, or "best"), license (the model
      card's).

  Returns:
    The export's ExportResult (paths, version, checks).

  Raises:
    ValueError: an invalid argument, an existing version without
      overwrite, a run that cannot be loaded.
    ImportError: onnx or quantize without the `onnx` extra.
  """
  checkpoint = best_checkpoint.resolve(model_dir, checkpoint)
  checked = preflight.check_export(model_dir, export_dir=export_dir,
                                   probe_file=probe_file,
                                   checkpoint=checkpoint)
  # TensorFlow-backed: after the checks (see the top of this module).
  from tfqa import export as export_lib  # pylint: disable=import-outside-toplevel
  if settings.get("max_windows_per_batch") == 0:
    settings["max_windows_per_batch"] = None
  portable = config_lib.PortableConfig(
      onnx=onnx, quantize=quantize, allow_quality_drop=allow_quality_drop)
  return export_lib.export_model(
      model_dir=model_dir, export_dir=export_dir,
      config=config_lib.ExportConfig(**settings), probe_file=probe_file,
      checkpoint=checkpoint, portable=portable, checked=checked)


class Predictor:
  """Answers questions from contexts with a loaded model.

  `predictor(question, context)` returns one Answer (text, score,
  start_char, end_char; text "" for no answer); `predictor(questions,
  contexts)` with two lists returns a list of them.
  """

  def __init__(self, backend):
    self._backend = backend

  def __call__(self, question, context):
    if isinstance(question, str) and isinstance(context, str):
      return self._backend.answer([question], [context])[0]
    if isinstance(question, str) or isinstance(context, str):
      raise ValueError(
          f"Expected a question and a context, or two lists of them. "
          f"Received: {type(question).__name__} and "
          f"{type(context).__name__}.")
    return self.answer(list(question), list(context))

  def answer(self, questions: Sequence[str], contexts: Sequence[str]) -> list:
    """One Answer per (question, context) pair."""
    return self._backend.answer(questions, contexts)


def load_predictor(path: str, *, onnx: bool | None = None,
                   checkpoint: str | None = None,
                   verify_manifest: bool = False,
                   checked: preflight.Checked | None = None) -> Predictor:
  """A Predictor for an export, an ONNX model or a training run.

  Args:
    path: a SavedModel version directory or an export directory (its latest
      version); an .onnx file export wrote (ONNX Runtime, the `onnx`
      extra); or a run directory `train` wrote (its checkpoint).
    onnx: True: answer with the ONNX model (`path` an .onnx file or an
      export directory with onnx/model.onnx); default: when `path` ends
      with .onnx.
    checkpoint: a checkpoint prefix, or "best" (the run's keep_best
      checkpoint); run directories only; default: the newest readable one.
    verify_manifest: refuse an export whose files differ from its
      manifest.json (SHA-256).
    checked: what preflight.check_predict returned for these arguments
      (not checked again); None: checked when loading.

  Raises:
    ValueError: `path` is none of these, or an option does not apply to it.
  """
  # TensorFlow-backed: imported when called (see the top of this module);
  # load_predictor checks `path` before it loads a model.
  from tfqa.inference import predictor  # pylint: disable=import-outside-toplevel
  checkpoint = best_checkpoint.resolve(path, checkpoint)
  return Predictor(predictor.load_predictor(
      path, onnx=onnx, verify_manifest=verify_manifest,
      checkpoint=checkpoint, checked=checked))


def _train_signature_and_doc():
  """`train`'s full signature and docstring: every setting, its default and
  its help, generated from the config dataclasses (as tfqa_train's flags)."""
  signature = inspect.signature(train)
  params = [p for p in signature.parameters.values()
            if p.kind is not p.VAR_KEYWORD]
  lines = []
  for section, cls in config_lib.SECTION_TYPES.items():
    comments = config_lib.field_comments(cls)
    lines.append(f"      {section} ({cls.__name__}):")
    for field in dataclasses.fields(cls):
      params.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY,
                                      default=field.default,
                                      annotation=field.type))
      lines.append(f"        {field.name} (default {field.default!r}): "
                   f"{comments[field.name]}")
  return signature.replace(parameters=params), "\n".join(lines)


_TRAIN_DOC = """Trains and evaluates a run in `model_dir`; called again, resumes it.

  What tfqa_train does with the same settings (the flags have these names
  and defaults): `tfqa.train(train_file="train.json", eval_file="dev.json",
  model="minilm-l6", model_dir="runs/a")`, or `tfqa.train(run_config,
  model_dir="runs/a")` with a tfqa.RunConfig. Calling it again with the same
  `model_dir` resumes the run from its newest checkpoint, exactly.

  Args:
    run_config: a tfqa.RunConfig; keyword settings replace its fields.
      Default: the run's saved run_config.json when `model_dir` holds one
      (a resume), else a new config from the settings and the defaults.
    model_dir: the run directory: run_config.json, checkpoints/, logs/
      (TensorBoard), train_log.jsonl, tokenizer/, bert_config.json, eval/.
    callbacks: tf_keras callbacks (EarlyStopping(monitor="val_f1"),
      TensorBoard, CSVLogger(append=True), TerminateOnNaN, LambdaCallback,
      ProgbarLogger, your own). One Keras fit runs the whole run; Keras
      epochs are the data's; evaluations put val_exact_match and val_f1
      (v2.0: val_best_f1, val_has_ans_f1, val_no_ans_f1) into the logs of
      their epoch (evaluations run every eval_every_steps and after the
      last step). A callback that stops training leaves a complete run
      (checkpoint, final evaluation) that the same call extends later.
      BackupAndRestore, ModelCheckpoint, ReduceLROnPlateau and
      LearningRateScheduler are refused: tfqa checkpoints (see keep_best),
      resumes and schedules the run itself.
    verbose: "auto": Keras' progress bar in a terminal or notebook, else a
      line every `progress_every_steps` steps; 0, 1 or 2: Keras fit's own.
    progress_every_steps: steps between progress lines (verbose="auto"
      without a terminal).
    hooks: a training.TrainingHooks: functions called at named points of
      the run (tests and tools inject faults through it).
    **settings: any field of the RunConfig sections, by name:
{settings}

  Returns:
    The training.TrainResult: global_step, total_steps, resumed_from,
    checkpoint, metrics (the final evaluation's), best_checkpoint, ...

  Raises:
    ValueError: an unknown setting or an invalid value, a callback tfqa
      refuses, missing or unreadable data or model, before anything is
      written; and what the run's checkpoints raise.
"""

train.__signature__, _settings_doc = _train_signature_and_doc()
train.__doc__ = _TRAIN_DOC.replace("{settings}", _settings_doc)
