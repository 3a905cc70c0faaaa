"""export_model: a run's checkpoint -> staged SavedModel, pretrained copy, checks, model card, manifest -> published atomically."""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

from tfqa import config as config_lib
from tfqa import preflight
from tfqa import signals
from tfqa.export import card as card_lib
from tfqa.export import manifest as manifest_lib
from tfqa.export import portable as portable_lib
from tfqa.export import pretrained as pretrained_lib
from tfqa.export import publish
from tfqa.export import saved_model as saved_model_lib
from tfqa.export import threshold as threshold_lib
from tfqa.export import verify as verify_lib
from tfqa.inference import trained_model
from tfqa.layout import exportdir
from tfqa.layout import fs
from tfqa.layout import json_files

# What ExportHooks.after_stage is called with, in this order ("verify" and
# "portable" only when they run).
STAGES = ("saved_model", "warmup", "pretrained", "verify", "portable",
          "published_version", "published_pretrained", "manifest")


@dataclasses.dataclass(frozen=True)
class ExportResult:
  """Where an export went and how its verification came out."""

  # The TF Serving version directory (export_dir/saved_model/<name>/<version>).
  saved_model_dir: str
  # The `from_pretrained` directory (export_dir/pretrained).
  pretrained_dir: str
  # export_dir/manifest.json.
  manifest_path: str
  # Max logit diffs, answer agreement and disagreements; {"skipped": True}
  # when verification was turned off.
  verification: dict
  # The manifest's "portable" section (ONNX/TFLite paths, parity, quality
  # of quantized models); None without them.
  portable: dict | None = None


@dataclasses.dataclass(frozen=True)
class ExportHooks:
  """export_model's seams: tests and tools/chaos.py inject faults here.

  Nothing else of the export is patched from outside: a fault is a hook
  that raises (or kills the process) at a stage, a publisher whose rename
  fails, or a parity check that is made to fail.
  """

  # Called with a stage name (STAGES) and the path it just wrote (staged,
  # or published for "published_*"; the manifest for "manifest").
  after_stage: Callable[[str, str], None] | None = None
  # Moves staged directories into place.
  publisher: publish.Publisher = publish.Publisher()
  # Checks the staged export against the checkpoint (verify.check_parity's
  # arguments); raising ExportVerificationError stops the export.
  check_parity: Callable[..., dict] = verify_lib.check_parity
  # Makes the int8 ONNX model from the float one (portable.build_portable's
  # quantize_fn; None: portable.quantize_onnx_int8).
  quantize_onnx: portable_lib.QuantizeFn | None = None

  def stage(self, name: str, path: str) -> None:
    if self.after_stage is not None:
      self.after_stage(name, path)


def export_model(*, model_dir: str, export_dir: str,
                 config: config_lib.ExportConfig | None = None,
                 probe_file: str | None = None,
                 checkpoint: str | None = None,
                 portable: config_lib.PortableConfig | None = None,
                 hooks: ExportHooks | None = None,
                 checked: preflight.Checked | None = None,
                 **settings) -> ExportResult:
  """Exports a run's checkpoint as a TF Serving SavedModel and a HF directory.

  Args:
    model_dir: a tfqa_train --model_dir.
    export_dir: where saved_model/, pretrained/ and manifest.json go.
    config: names, version, checks and serving batches (ExportConfig).
    probe_file: SQuAD JSON whose questions (at most
      config.max_probe_questions) the verification and the warm-up requests
      use; defaults to the run's eval_file, else the bundled sample.
    checkpoint: a checkpoint prefix; defaults to the newest readable one.
    portable: also write onnx/ (and, quantized, tflite/) from the
      predict_logits signature, checked on the probe set (see portable);
      an export without them removes those of an older export.
    hooks: seams for fault injection (ExportHooks); None: none.
    checked: what preflight.check_export returned for these arguments (not
      checked again); None: checked here.
    **settings: ExportConfig fields (model_name=, version=, overwrite=,
      verify=, max_windows_per_batch=, no_answer_threshold=, ...),
      replacing those of `config`.

  Returns:
    The ExportResult.

  Raises:
    ValueError: an invalid argument, an existing version directory without
      `overwrite`, a run that cannot be loaded, or a threshold that does not
      apply (a v1.1 run; "best" without an evaluation of the checkpoint).
    ExportVerificationError: the export does not reproduce the checkpoint.
    portable.PortableExportError: an ONNX model does not reproduce the
      SavedModel, or a quantized one loses too much F1.
    paths.PathError (a ValueError): an input or `export_dir` of the wrong
      kind (see preflight.check_export), before anything is written.
  """
  config = _config(config, settings)
  hooks = hooks or ExportHooks()
  checked = preflight.unless_checked(
      checked, preflight.check_export, model_dir=model_dir,
      export_dir=export_dir, probe_file=probe_file, checkpoint=checkpoint)
  target = _target(export_dir, config)
  trained, threshold = threshold_lib.with_null_threshold(trained_model.load(
      model_dir, checkpoint=checkpoint, checked=checked),
      config.no_answer_threshold)
  probe_source, probe = verify_lib.probe_examples(
      probe_file, trained.run_config,
      max_questions=config.max_probe_questions)
  staging = _staging(export_dir, target)
  try:
    verification, portable_report = _stage_models(
        trained, staging, probe=probe, probe_source=probe_source,
        config=config, portable=portable, hooks=hooks)
    json_files.atomic_write_text(
        os.path.join(staging.pretrained, exportdir.MODEL_CARD_FILE),
        card_lib.model_card(
            trained, model_name=config.model_name, version=target.version,
            verification=verification, threshold=threshold,
            license_id=config.license))
    manifest = manifest_lib.build_manifest(
        trained, export_dir=export_dir, model_name=config.model_name,
        version=target.version, staged_version=staging.version,
        staged_pretrained=staging.pretrained, verification=verification,
        probe_source=probe_source, staged_portable=staging.portable,
        portable_report=portable_report,
        max_windows_per_batch=config.max_windows_per_batch,
        threshold=threshold)
    manifest_path = _publish(staging, target, manifest, export_dir=export_dir,
                             overwrite=config.overwrite, hooks=hooks)
  finally:
    staging.remove()
  return ExportResult(saved_model_dir=target.version_dir,
                      pretrained_dir=target.pretrained_dir,
                      manifest_path=manifest_path, verification=verification,
                      portable=portable_report)


@dataclasses.dataclass(frozen=True)
class _Target:
  """Where an export is published."""

  models_dir: str  # export_dir/saved_model/<model_name>
  version: int
  version_dir: str  # models_dir/<version>
  pretrained_dir: str  # export_dir/pretrained


def _target(export_dir, config):
  """The export's places, after recovering an interrupted one; refuses an
  existing version without `overwrite`."""
  models_dir = os.path.join(export_dir, exportdir.SAVED_MODEL_SUBDIR,
                            config.model_name)
  publish.recover_interrupted(export_dir, models_dir)
  version = config.version
  if version is None:
    version = exportdir.next_version(models_dir)
  version_dir = os.path.join(models_dir, str(version))
  pretrained_dir = os.path.join(export_dir, exportdir.PRETRAINED_SUBDIR)
  if not config.overwrite:
    publish.refuse_existing(version_dir, models_dir)
  return _Target(models_dir, version, version_dir, pretrained_dir)


@dataclasses.dataclass(frozen=True)
class _Staging:
  """Where an export is written before it is published."""

  version: str
  pretrained: str
  portable: str

  def remove(self) -> None:
    for staged in (self.version, self.pretrained, self.portable):
      fs.rmtree(staged)


def _staging(export_dir, target):
  fs.makedirs(target.models_dir)
  # TF Serving only loads all-digit directory names: it never sees these.
  staged_version = os.path.join(target.models_dir,
                                f".tmp-{target.version}-{os.getpid()}")
  staged_pretrained = os.path.join(
      export_dir, f".tmp-{exportdir.PRETRAINED_SUBDIR}-{os.getpid()}")
  # tf2onnx, ONNX Runtime and TFLite use local files: a URL's is staged
  # locally, then copied (publish_portable).
  staged_portable = (
      fs.make_local_temp_dir(prefix="tfqa-portable-")
      if fs.is_url(export_dir) else
      os.path.join(export_dir, f".tmp-portable-{os.getpid()}"))
  return _Staging(staged_version, staged_pretrained, staged_portable)


def _stage_models(trained, staging, *, probe, probe_source, config, portable,
                  hooks):
  """Writes the SavedModel (with warm-up requests), the pretrained copy and,
  when asked, the portable models; checks them. Returns (verification,
  portable report)."""
  saved_model_lib.save_saved_model(
      trained, staging.version,
      max_windows_per_batch=config.max_windows_per_batch)
  hooks.stage("saved_model", staging.version)
  saved_model_lib.write_warmup_requests(
      os.path.join(staging.version, exportdir.WARMUP_FILE), probe,
      model_name=config.model_name,
      num_requests=config.num_warmup_requests)
  hooks.stage("warmup", staging.version)
  pretrained_lib.save_pretrained(trained, staging.pretrained)
  hooks.stage("pretrained", staging.pretrained)
  if config.verify:
    verification = hooks.check_parity(
        trained, saved_model_dir=staging.version,
        pretrained_dir=staging.pretrained, examples=probe,
        probe_source=probe_source,
        logits_tolerance=config.logits_tolerance,
        min_answer_agreement=config.min_answer_agreement)
    hooks.stage("verify", staging.version)
  else:
    verification = {"skipped": True}
  portable_report = None
  if portable is not None and portable.enabled:
    portable_report = portable_lib.build_portable(
        saved_model_dir=staging.version, staging_dir=staging.portable,
        examples=probe, tokenizer=trained.tokenizer,
        run_config=trained.run_config, probe_source=probe_source,
        portable=portable, logits_tolerance=config.logits_tolerance,
        quantize_fn=hooks.quantize_onnx)
    hooks.stage("portable", staging.portable)
  return verification, portable_report


def _publish(staging, target, manifest, *, export_dir, overwrite, hooks):
  """Moves the staged export into place, all of it or nothing, then writes
  the manifest; returns its path."""
  publisher = hooks.publisher
  # All of it or nothing: a SIGTERM/SIGINT waits for the renames.
  with signals.deferred():
    # Before anything is replaced: a rerun after a kill is let in.
    exportdir.mark_as_export_dir(export_dir)
    publisher.publish(staging.version, target.version_dir,
                      overwrite=overwrite)
    try:
      hooks.stage("published_version", target.version_dir)
      # pretrained/ mirrors the newest export: replaced whole, atomically.
      publisher.publish(staging.pretrained, target.pretrained_dir,
                        overwrite=True)
      hooks.stage("published_pretrained", target.pretrained_dir)
      publisher.publish_portable(staging.portable, export_dir)
    except BaseException:
      # Keep the export all-or-nothing: take the new version back out.
      fs.rmtree(target.version_dir)
      raise
    manifest_path = os.path.join(export_dir, exportdir.MANIFEST_FILE)
    json_files.atomic_write_json(manifest_path, manifest)
    hooks.stage("manifest", manifest_path)
  return manifest_path


def _config(config, settings):
  """`config` (default ExportConfig()) with the `settings` fields replaced."""
  fields = {f.name for f in dataclasses.fields(config_lib.ExportConfig)}
  unknown = sorted(set(settings) - fields)
  if unknown:
    raise TypeError(f"export_model() got unexpected keyword argument(s) "
                    f"{unknown}. Expected ExportConfig fields: "
                    f"{sorted(fields)}.")
  return dataclasses.replace(config or config_lib.ExportConfig(), **settings)
