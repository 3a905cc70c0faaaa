"""Portable and smaller exports of predict_logits: ONNX (tf2onnx), int8 ONNX and int8 TFLite, each checked on the probe set.

Written next to the SavedModel by `tfqa.export.export_model(portable=...)`:

  export_dir/
    onnx/model.onnx             float32, opset >= 17, dynamic batch and
                                sequence axes; logits checked against the
                                SavedModel's predict_logits
    onnx/model.int8.onnx        ONNX Runtime dynamic int8 quantization
    tflite/model.int8.tflite    TFLite dynamic-range quantization

Every quantized artifact is scored on the probe questions next to the float
model (EM/F1, answer agreement, size ratio); one that loses more than
`max_f1_drop` F1 points fails the export unless `allow_quality_drop`.
Needs the `onnx` extra (tf2onnx, onnx, onnxruntime); nothing here is imported
by a plain export.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
# Registers the tokenizer ops of the SavedModel's serving_default graph,
# which the converters load.
import tensorflow_text  # pylint: disable=unused-import

from tfqa import errors
from tfqa import config as config_lib
from tfqa import pins
from tfqa.data import squad as squad_lib
from tfqa.evaluation import metrics as metrics_lib
from tfqa.inference import answering
from tfqa.inference import logits as logits_lib
from tfqa.layout import exportdir
from tfqa.layout import fs

# Names of the dynamic axes in the ONNX graph's inputs and outputs.
DYNAMIC_AXES = ("batch", "sequence")

# quantize_fn(float_onnx_path, int8_onnx_path) and
# tflite_fn(saved_model_dir, tflite_path): what build_portable calls to make
# the quantized artifacts (tests pass other settings).
QuantizeFn = Callable[[str, str], None]
TfliteFn = Callable[[str, str], None]


class PortableExportError(errors.ArgumentNamingError):
  """A portable artifact failed its check; nothing was published.

  Attributes:
    report: the manifest section as it would have been written (parity,
      sizes, EM/F1, agreement), so the failure can be inspected.
  """

  def __init__(self, template: str, report: dict, names=()):
    super().__init__(template, names)
    self.report = report


def _require_onnx_extra():
  # The `onnx` extra is optional (setup.cfg): only --onnx and
  # --quantize=int8 need it, and they are refused in one line without it.
  try:
    import onnx  # pylint: disable=import-outside-toplevel,unused-import
    import onnxruntime  # pylint: disable=import-outside-toplevel,unused-import
    import tf2onnx  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError as e:
    raise ImportError(
        f"ONNX export needs the `onnx` extra ({e.name} is missing): pip "
        f"install -c constraints.txt 'tfqa[onnx]' (see BUILD.md, "
        f"Extras).") from None


def _erfc_as_one_minus_erf(ctx, node, name, args):  # pylint: disable=unused-argument
  """tf2onnx handler: Erfc(x) -> 1 - Erf(x).

  TF 2.21's exact GELU (tf.nn.gelu, used by transformers' "gelu") computes
  0.5 * x * erfc(-x / sqrt(2)); tf2onnx 1.17 has no Erfc conversion and
  leaves the op in the graph, which ONNX Runtime then refuses.
  """
  # The optional `onnx` extra (see _require_onnx_extra).
  from tf2onnx import utils  # pylint: disable=import-outside-toplevel

  node.type = "Erf"
  one = ctx.make_const(utils.make_name(f"{name}_one"),
                       np.array(1.0, np.float32))
  ctx.insert_new_node_on_output("Sub", node.output[0],
                                inputs=[one.output[0], node.output[0]])
  return node


# tf2onnx handlers for ops it does not convert itself (custom_op_handlers).
OP_HANDLERS = {"Erfc": (_erfc_as_one_minus_erf, [])}


def convert_saved_model(saved_model_dir: str, output_path: str, *,
                        opset: int = config_lib.DEFAULT_OPSET,
                        op_handlers: dict | None = None) -> None:
  """Converts a SavedModel's predict_logits signature to ONNX with tf2onnx.

  The graph keeps the signature's names (inputs input_ids, attention_mask,
  token_type_ids: int32; outputs start_logits, end_logits: float32), all
  [batch, sequence] with both axes dynamic. `op_handlers` (default
  OP_HANDLERS) convert what tf2onnx cannot.

  Raises:
    ValueError: the converted graph holds ops ONNX does not define (named).
    ImportError: the `onnx` extra is not installed.
  """
  _require_onnx_extra()
  # The optional `onnx` extra (see _require_onnx_extra).
  import onnx  # pylint: disable=import-outside-toplevel
  import tf2onnx  # pylint: disable=import-outside-toplevel

  # The loaded object owns the variables: it must outlive the signature.
  loaded = tf.saved_model.load(saved_model_dir)
  spec = [tf.TensorSpec([None, None], tf.int32, name=name)
          for name in exportdir.LOGITS_INPUT_NAMES]

  @tf.function(input_signature=spec)
  def predict_logits(input_ids, attention_mask, token_type_ids):
    return loaded.signatures[exportdir.LOGITS_SIGNATURE](
        input_ids=input_ids, attention_mask=attention_mask,
        token_type_ids=token_type_ids)

  model, _ = tf2onnx.convert.from_function(
      predict_logits, input_signature=spec, opset=opset,
      custom_op_handlers=OP_HANDLERS if op_handlers is None else op_handlers)
  for value in list(model.graph.input) + list(model.graph.output):
    for dim, axis in zip(value.type.tensor_type.shape.dim, DYNAMIC_AXES):
      dim.dim_param = axis
  # from_function converts with continue_on_error: an op without a
  # conversion is left as a TF op and only fails when a runtime loads it.
  unknown = sorted({node.op_type for node in model.graph.node
                    if node.domain in ("", "ai.onnx") and
                    not onnx.defs.has(node.op_type, node.domain)})
  if unknown:
    raise ValueError(
        f"tf2onnx {tf2onnx.__version__} left TensorFlow ops without an ONNX "
        f"equivalent in the predict_logits graph of {saved_model_dir}: "
        f"{unknown}. The model cannot be exported to ONNX opset {opset} "
        f"as it is.")
  onnx.checker.check_model(model, full_check=True)
  fs.makedirs(os.path.dirname(output_path) or ".")
  onnx.save(model, output_path)


def quantize_onnx_int8(float_path: str, output_path: str) -> None:
  """ONNX Runtime dynamic quantization: int8 weights, int8 activations at run time.

  MatMul weights get one scale per output channel, embedding tables
  (Gather) one per table; activations are quantized per call.
  """
  # The optional `onnx` extra (see _require_onnx_extra).
  from onnxruntime import quantization  # pylint: disable=import-outside-toplevel

  quantization.quantize_dynamic(
      float_path, output_path, weight_type=quantization.QuantType.QInt8,
      per_channel=True)


def convert_tflite_int8(saved_model_dir: str, output_path: str) -> None:
  """TFLite dynamic-range quantization of the predict_logits signature.

  Weights are stored as int8; TFLite builtin ops only (no Flex delegate).

  Raises:
    Exception: whatever the TFLite converter raises when it cannot convert.
  """
  loaded = tf.saved_model.load(saved_model_dir)
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [loaded.signatures[exportdir.LOGITS_SIGNATURE]], loaded)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  flatbuffer = converter.convert()
  fs.makedirs(os.path.dirname(output_path) or ".")
  with fs.open_file(output_path, "wb") as f:
    f.write(flatbuffer)


def probe_scores(examples: Sequence[squad_lib.SquadExample],
                 texts: dict[str, str], *, version_2: bool) -> dict:
  """{"exact", "f1", "questions"} (0-100) of answer texts on the probe set.

  SQuAD v2.0 runs are scored on every question (an empty answer is right on
  unanswerable ones); v1.1 runs on the answerable questions only.
  """
  scored = [e for e in examples if version_2 or e.answer_texts]
  if not scored:
    raise errors.ArgumentNamingError(
        "The probe set has no answerable question, so a SQuAD v1.1 model "
        "cannot be scored on it. Pass {probe_file} with answerable "
        "questions.", ["probe_file"])
  result = metrics_lib.squad_metrics(squad_lib.gold_answers(scored), texts,
                                     version_2=version_2)
  exact = result["exact" if version_2 else "exact_match"]
  return {"exact": round(float(exact), 4), "f1": round(float(result["f1"]), 4),
          "questions": len(scored)}


def quality_report(examples: Sequence[squad_lib.SquadExample], *,
                   float_texts: dict[str, str], quantized_texts: dict[str, str],
                   float_bytes: int, quantized_bytes: int, version_2: bool,
                   max_f1_drop: float) -> dict:
  """What a quantized artifact costs: size ratio, EM/F1 next to float's, agreement."""
  float_scores = probe_scores(examples, float_texts, version_2=version_2)
  quantized_scores = probe_scores(examples, quantized_texts,
                                  version_2=version_2)
  same = sum(float_texts[e.id] == quantized_texts[e.id] for e in examples)
  f1_drop = round(float_scores["f1"] - quantized_scores["f1"], 4)
  return {
      "size_bytes": quantized_bytes,
      "float_size_bytes": float_bytes,
      "size_ratio": round(float_bytes / quantized_bytes, 3),
      "probe_float": float_scores,
      "probe_quantized": quantized_scores,
      "f1_drop": f1_drop,
      "max_f1_drop": max_f1_drop,
      "answer_agreement": round(same / len(examples), 4),
      "answers_changed": len(examples) - same,
      "within_quality_bound": f1_drop <= max_f1_drop,
  }


def check_quality(quantized: dict, *, max_f1_drop: float,
                  allow_quality_drop: bool) -> list[str]:
  """The quality-gate failures of the quantized artifacts ([] when none).

  Args:
    quantized: artifact name -> quality_report (entries with "error" or
      "skipped" are not scored and pass).
    max_f1_drop: F1 points an artifact may lose.
    allow_quality_drop: report the losses but never fail.
  """
  if allow_quality_drop:
    return []
  return [f"{name}: F1 {report['probe_quantized']['f1']:.2f} vs float "
          f"{report['probe_float']['f1']:.2f} on "
          f"{report['probe_float']['questions']} probe questions, a drop of "
          f"{report['f1_drop']:.2f} points > {max_f1_drop:g}"
          for name, report in quantized.items()
          if "f1_drop" in report and report["f1_drop"] > max_f1_drop]


def build_portable(*, saved_model_dir: str, staging_dir: str,
                   examples: Sequence[squad_lib.SquadExample], tokenizer,
                   run_config: config_lib.RunConfig, probe_source: str,
                   portable: config_lib.PortableConfig,
                   logits_tolerance: float = (
                       config_lib.ExportConfig.logits_tolerance),
                   quantize_fn: QuantizeFn | None = None,
                   tflite_fn: TfliteFn | None = None) -> dict:
  """Writes staging_dir/onnx (and tflite) and checks them on the probe set.

  Args:
    saved_model_dir: the (staged) SavedModel version whose predict_logits
      signature is converted and is the reference of the parity check.
    staging_dir: gets onnx/ and, with quantize, tflite/.
    examples: the probe questions.
    tokenizer: the run's tokenizer (windows for the probe questions).
    run_config: the run's config (windows, decoding, SQuAD version).
    probe_source: where `examples` came from (recorded).
    portable: what to write and the quality gate.
    logits_tolerance: largest |logit difference| between ONNX Runtime and
      the SavedModel's predict_logits (ExportConfig.logits_tolerance).
    quantize_fn: makes the int8 ONNX model from the float one (default:
      quantize_onnx_int8).
    tflite_fn: makes the int8 TFLite model from the SavedModel (default:
      convert_tflite_int8); an exception is recorded as the reason there is
      none.

  Returns:
    The manifest's "portable" section: paths, converter versions, parity,
    and per quantized artifact its quality report.

  Raises:
    PortableExportError: ONNX logits differ from the SavedModel's by more
      than `logits_tolerance`, or a quantized artifact loses more than
      `portable.max_f1_drop` F1 points (without allow_quality_drop).
    ImportError: the `onnx` extra is not installed.
  """
  _require_onnx_extra()
  float_path = os.path.join(staging_dir, exportdir.ONNX_SUBDIR,
                            exportdir.ONNX_FILE)
  convert_saved_model(saved_model_dir, float_path, opset=portable.opset)

  reference = answering.answer_examples(
      examples, logits_lib.saved_model_logits_fn(saved_model_dir),
      run_config, tokenizer=tokenizer)
  float_answers = _answer_with(float_path, examples, reference, run_config)
  diff = logits_lib.max_abs_diff(reference.logits, float_answers.logits)
  float_texts = float_answers.predictions.texts()
  report = _float_report(portable, parity={
      "probe_source": probe_source, "probe_questions": len(examples),
      "probe_windows": len(reference.windows),
      "logits_max_abs_diff_vs_saved_model": diff,
      "logits_tolerance": logits_tolerance,
      "passed": diff <= logits_tolerance},
      probe_float=probe_scores(
          examples, float_texts,
          version_2=run_config.decode.version_2_with_negative))
  if not diff <= logits_tolerance:
    raise PortableExportError(
        f"ONNX export check failed on {len(examples)} probe questions from "
        f"{probe_source}: ONNX Runtime logits differ from the SavedModel's "
        f"predict_logits by up to {diff:.3g} > {logits_tolerance:g}. Nothing "
        f"was published.", report)
  if portable.quantize == "int8":
    _add_quantized(report, examples=examples, run_config=run_config,
                   float_path=float_path, reference=reference,
                   float_texts=float_texts, saved_model_dir=saved_model_dir,
                   staging_dir=staging_dir, portable=portable,
                   quantize_fn=quantize_fn or quantize_onnx_int8,
                   tflite_fn=tflite_fn or convert_tflite_int8)
  report["allow_quality_drop"] = portable.allow_quality_drop
  _gate_quality(report, portable)
  return report




def _float_report(portable, *, parity, probe_float):
  """The manifest's "portable" section for the float ONNX model."""
  return {
      "paths": {"onnx": f"{exportdir.ONNX_SUBDIR}/{exportdir.ONNX_FILE}"},
      "opset": portable.opset,
      "dynamic_axes": list(DYNAMIC_AXES),
      "source": "the SavedModel's predict_logits signature, converted with "
                "tf2onnx.convert.from_function (Erfc as 1 - Erf)",
      "versions": {name: pins.installed_version(name)
                   for name in ("tf2onnx", "onnx", "onnxruntime")},
      "parity": parity,
      "probe_float": probe_float,
      "quantized": {},
  }


def _gate_quality(report, portable):
  """Raises PortableExportError when a quantized artifact loses too much F1."""
  failures = check_quality(report["quantized"],
                           max_f1_drop=portable.max_f1_drop,
                           allow_quality_drop=portable.allow_quality_drop)
  if failures:
    raise PortableExportError(
        "Quantized model(s) lose too much quality: " +
        errors.literal("; ".join(failures)) +
        f" (float reference: {exportdir.ONNX_SUBDIR}/"
        f"{exportdir.ONNX_FILE}). Nothing was published. Pass "
        f"--allow_quality_drop ({{allow_quality_drop}}=True) to publish them "
        f"anyway; the manifest records the loss.", report,
        ["allow_quality_drop"])


def _answer_with(path, examples, reference, run_config):
  """answering.Answered of the ONNX or TFLite (.tflite) model at `path`, on
  the windows of `reference` (the SavedModel's answers)."""
  logits_fn = (logits_lib.tflite_logits_fn(path)
               if path.endswith(".tflite") else
               logits_lib.onnx_logits_fn(logits_lib.onnx_session(path)))
  return answering.answer_examples(examples, logits_fn, run_config,
                                   windows=reference.windows)


def _add_quantized(report, *, examples, run_config, float_path, reference,
                   float_texts, saved_model_dir, staging_dir, portable,
                   quantize_fn, tflite_fn):
  """Writes the int8 ONNX and TFLite models; adds their paths and quality
  reports (or why TFLite has none) to `report`."""
  quality = functools.partial(
      quality_report, examples, float_texts=float_texts,
      float_bytes=fs.getsize(float_path),
      version_2=run_config.decode.version_2_with_negative,
      max_f1_drop=portable.max_f1_drop)

  def record(name, relative_path, method):
    """Answers with the artifact at staging_dir/relative_path; reports it."""
    path = os.path.join(staging_dir, *relative_path.split("/"))
    texts = _answer_with(path, examples, reference,
                         run_config).predictions.texts()
    report["paths"][name] = relative_path
    report["quantized"][name] = {
        "method": method, **quality(quantized_texts=texts,
                                    quantized_bytes=fs.getsize(path))}

  quantize_fn(float_path, os.path.join(os.path.dirname(float_path),
                                       exportdir.ONNX_INT8_FILE))
  record("onnx_int8", f"{exportdir.ONNX_SUBDIR}/{exportdir.ONNX_INT8_FILE}",
         "onnxruntime.quantization.quantize_dynamic (int8 weights, "
         "per-channel MatMul scales; int8 activations per call)")
  tflite_path = os.path.join(staging_dir, exportdir.TFLITE_SUBDIR,
                             exportdir.TFLITE_INT8_FILE)
  try:
    tflite_fn(saved_model_dir, tflite_path)
  except Exception as e:  # pylint: disable=broad-except
    # "if TFLite converts it": record why there is no TFLite model.
    report["quantized"]["tflite_int8"] = {
        "skipped": f"TFLite conversion failed: {type(e).__name__}: "
                   f"{str(e)[:2000]}"}
    return
  record("tflite_int8",
         f"{exportdir.TFLITE_SUBDIR}/{exportdir.TFLITE_INT8_FILE}",
         "tf.lite.TFLiteConverter, Optimize.DEFAULT (dynamic range: int8 "
         "weights), TFLite builtin ops")
