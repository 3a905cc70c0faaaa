"""Preflight: what each command reads and writes, checked before it reads, loads or writes anything.

Each entry point calls its check here first (the CLIs before importing
TensorFlow, so that a wrong input fails in a fraction of a second). A check
returns what it checked (Checked, or the model source for training): the
library function behind the entry point takes it and checks only what it
does not cover (`unless_checked`), so each input is checked once. Paths go
through `paths.check_path`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

from tfqa import config as config_lib
from tfqa import errors
from tfqa.layout import exportdir
from tfqa.layout import fs
from tfqa.layout import paths
from tfqa.layout import rundir
from tfqa.model import source as model_source

_SQUAD = "a SQuAD JSON file"


@dataclasses.dataclass(frozen=True)
class Checked:
  """The argument values a check found right, to pass on with them."""
  values: tuple[tuple[str, object], ...]

  def covers(self, **values) -> bool:
    """Whether every one of `values` was checked with that value."""
    checked = dict(self.values)
    return all(name in checked and checked[name] == value
               for name, value in values.items())


def unless_checked(checked: Checked | None, check: Callable[..., Checked],
                   **values) -> Checked:
  """`checked` when it covers `values`; else `check(**values)`'s result."""
  if checked is not None and checked.covers(**values):
    return checked
  return check(**values)


def _checked(**values) -> Checked:
  return Checked(tuple(values.items()))
# Characters of a path that TensorFlow's checkpoint reader matches as a
# pattern rather than as themselves ('*' and '?' match themselves too).
_PATTERN_CHARS = "[\\"


def check_train(run_config: config_lib.RunConfig,
                model_dir: str) -> model_source.ModelSource:
  """Checks what a training run reads and where it writes.

  The run directory, the data files, the model (a hub name is looked up:
  the cache, else one short request) and the windows against the model's
  position embeddings.

  Returns:
    The resolved model source, checked: pass it on (training.
    train_and_evaluate's `source`) rather than resolving it again.

  Raises:
    ValueError: naming the argument, the value and what was expected.
  """
  paths.check_path(model_dir, paths.OUTPUT_DIRECTORY, argument="model_dir",
                   what="a run directory (created if absent)")
  pattern_chars = " and ".join(sorted(set(model_dir) & set(_PATTERN_CHARS)))
  if pattern_chars:
    raise paths.path_error("model_dir", model_dir, errors.literal(
        f"contains {pattern_chars}, which TensorFlow's checkpoint reader "
        f"takes for a file pattern: the run's checkpoints could never be "
        f"read back. Expected a path without {pattern_chars}; pick another "
        f"name."))
  saved = _saved_run_config(model_dir)
  for name in ("train_file", "eval_file"):
    path = getattr(run_config.data, name)
    if not path:
      continue
    if saved and getattr(saved.data, name) == path:
      _check_runs_data_file(name, path, instead=None)
    else:
      paths.check_path(path, paths.JSON_FILE, argument=name, what=_SQUAD)
  if run_config.data.tfds_data_dir:
    paths.check_path(run_config.data.tfds_data_dir, paths.DIRECTORY,
                     argument="tfds_data_dir", what="a TFDS data directory")
  init = run_config.model.init_checkpoint
  if init and not rundir.checkpoints_on_disk(model_dir):
    check_init_checkpoint(init)
  source = model_source.resolve(run_config.model)
  model_source.check_feature_config(source, run_config.features)
  return source


def check_init_checkpoint(init_checkpoint: str) -> None:
  """Checks `init_checkpoint`: a run directory with checkpoints, or a prefix.

  Raises:
    paths.PathError: naming the argument, what is there and what was expected.
  """
  what = ("a tfqa_train --model_dir that has trained, or a checkpoint prefix "
          "such as runs/a/checkpoints/ckpt-500")
  if fs.isdir(init_checkpoint):
    if not rundir.checkpoints_on_disk(init_checkpoint):
      pattern = os.path.join(init_checkpoint, rundir.CHECKPOINT_SUBDIR,
                             rundir.CHECKPOINT_NAME)
      raise paths.path_error("init_checkpoint", init_checkpoint, errors.literal(
          f"is a directory without tfqa checkpoints (no {pattern}-*.index); "
          f"expected {what}."))
    return
  paths.check_path(init_checkpoint, paths.CHECKPOINT, argument="init_checkpoint",
                   what=what)


def check_eval(model_dir: str, *, eval_file: str | None = None,
               checkpoint: str | None = None,
               output_dir: str | None = None) -> Checked:
  """Checks the run, checkpoint, eval file and output directory of tfqa_eval.

  Raises:
    paths.PathError: naming the argument, the value and what was expected.
  """
  _check_run(model_dir, checkpoint)
  if eval_file:
    paths.check_path(eval_file, paths.JSON_FILE, argument="eval_file",
                     what=_SQUAD)
  else:
    _check_runs_eval_file(model_dir, instead="eval_file")
  if output_dir:
    paths.check_path(output_dir, paths.OUTPUT_DIRECTORY, argument="output_dir",
                     what="a directory for the outputs (created if absent)")
  return _checked(model_dir=model_dir, eval_file=eval_file,
                  checkpoint=checkpoint, output_dir=output_dir)



def check_export(model_dir: str, *, export_dir: str,
                 probe_file: str | None = None,
                 checkpoint: str | None = None) -> Checked:
  """Checks the run, checkpoint, probe file and export directory of tfqa_export.

  Raises:
    paths.PathError: naming the argument, the value and what was expected.
  """
  _check_run(model_dir, checkpoint)
  paths.check_path(export_dir, paths.OUTPUT_DIRECTORY, argument="export_dir",
                   what="an export directory (created if absent)")
  _check_nothing_of_others_is_replaced(export_dir)
  if probe_file:
    paths.check_path(probe_file, paths.JSON_FILE, argument="probe_file",
                     what=_SQUAD)
  else:
    _check_runs_eval_file(model_dir, instead="probe_file")
  return _checked(model_dir=model_dir, export_dir=export_dir,
                  probe_file=probe_file, checkpoint=checkpoint)



def _check_nothing_of_others_is_replaced(export_dir):
  """An export replaces manifest.json, pretrained/, onnx/ and tflite/."""
  found = exportdir.entries_not_ours(export_dir)
  if not found:
    return
  def listed(names):
    return ", ".join(n if n == exportdir.MANIFEST_FILE else n + "/"
                     for n in names)
  raise paths.path_error("export_dir", export_dir, errors.literal(
      f"holds {listed(found)}, which an export replaces, but no export wrote "
      f"there (no {exportdir.EXPORT_MARKER}); expected a new or empty "
      f"directory, an earlier export, or one without "
      f"{listed(exportdir.REPLACED_ENTRIES)}. Nothing was written."))


def check_predict(*, model: str | None = None, onnx_model: str | None = None,
                  checkpoint: str | None = None,
                  input_file: str | None = None,
                  output_file: str | None = None) -> Checked:
  """Checks the model, questions file and output file of tfqa_predict.

  Raises:
    paths.PathError: naming the argument, the value and what was expected.
  """
  if model:
    paths.check_path(model, paths.DIRECTORY, argument="model",
                     what="a SavedModel version directory, an export "
                          "directory (tfqa_export --export_dir) or a "
                          "tfqa_train --model_dir")
    if checkpoint and fs.isfile(rundir.run_config_path(model)):
      # (A SavedModel takes no --checkpoint: loading it says so.)
      check_checkpoint(checkpoint, model)
  if onnx_model:
    paths.check_path(onnx_model, paths.FILE_OR_DIRECTORY, argument="onnx_model",
                     what="an .onnx file written by tfqa_export --onnx, or "
                          "its export directory")
  if input_file:
    paths.check_path(input_file, paths.JSON_FILE, argument="input_file",
                     what=_SQUAD)
  if output_file:
    paths.check_path(output_file, paths.OUTPUT_FILE, argument="output_file",
                     what="a JSON file to write, such as predictions.json")
  # model_dir: the run whose checkpoint was checked (trained_model.load's
  # argument), when `model` is one.
  return _checked(model=model, model_dir=model, onnx_model=onnx_model,
                  checkpoint=checkpoint, input_file=input_file,
                  output_file=output_file)



def check_score(data_file: str, predictions_file: str, *,
                na_prob_file: str | None = None) -> Checked:
  """Checks the files of `tfqa_score DATA_FILE PREDICTIONS_FILE`.

  Raises:
    paths.PathError: naming the argument, the value and what was expected.
  """
  paths.check_path(data_file, paths.JSON_FILE, argument="data_file", what=_SQUAD)
  paths.check_path(predictions_file, paths.JSON_FILE, argument="predictions_file",
                   what="a predictions JSON file (question id -> answer)")
  if na_prob_file:
    paths.check_path(na_prob_file, paths.JSON_FILE, argument="na_prob_file",
                     what="a JSON file of question id -> no-answer "
                          "probability")
  return _checked(data_file=data_file, predictions_file=predictions_file,
                  na_prob_file=na_prob_file)



def check_checkpoint(checkpoint: str, model_dir: str) -> Checked:
  """Checks `checkpoint`, naming the run's checkpoints when it is not one.

  Raises:
    paths.PathError: `checkpoint` is not a checkpoint prefix.
  """
  existing = rundir.checkpoints_on_disk(model_dir)
  paths.check_path(
      checkpoint, paths.CHECKPOINT, argument="checkpoint",
      what=(f"a checkpoint prefix of {model_dir}" if existing else
            f"a checkpoint prefix ({model_dir} has no checkpoint yet)"),
      choices=existing)
  return _checked(checkpoint=checkpoint, model_dir=model_dir)



def _saved_run_config(model_dir):
  """The run's saved config; None if it has none or a damaged one (loading
  the run reports that)."""
  try:
    return rundir.read_run_config(model_dir)
  except ValueError:
    return None


def _check_runs_eval_file(model_dir, *, instead):
  """The run's eval_file, read when the command is given no other file."""
  run_config = _saved_run_config(model_dir)
  if run_config and run_config.data.eval_file:
    _check_runs_data_file("eval_file", run_config.data.eval_file,
                          instead=instead)


def _check_runs_data_file(name, path, *, instead):
  """A data file named in run_config.json (`instead`: the argument to pass
  instead, or None).

  run_config.json keeps the path as training was given it: a relative one
  is found only from the directory training started in.
  """
  advice = "run from the directory training started in"
  paths.check_path(path, paths.JSON_FILE, argument=f"the run's data.{name}",
                   what=(f"{_SQUAD} ({f'pass {{{instead}}}, or ' if instead else ''}"
                         f"{advice})"),
                   refers_to=[instead] if instead else [])


def _check_run(model_dir, checkpoint):
  paths.check_path(model_dir, paths.RUN_DIRECTORY, argument="model_dir",
                   what="a tfqa_train --model_dir")
  if checkpoint:
    check_checkpoint(checkpoint, model_dir)
