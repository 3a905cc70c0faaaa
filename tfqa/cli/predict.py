"""tfqa_predict: answer questions with an exported SavedModel or a training run.

  tfqa_predict --model=exports/a --question="Who built it?" --context="..."
  tfqa_predict --model=exports/a --input_file=dev.json \\
      --output_file=predictions.json --verify_manifest
  tfqa_predict --model=runs/a --question=... --context=...   # Python path
  tfqa_predict --onnx_model=exports/a/onnx/model.int8.onnx --question=... \
      --context=...   # ONNX Runtime (the `onnx` extra)

--model is a SavedModel version directory, an export directory (its latest
version) or a tfqa_train --model_dir (checkpoint, HF tokenizer). SavedModels
are answered without importing transformers. --onnx_model is an .onnx file
written by tfqa_export --onnx (or its export directory, for model.onnx): the
export's tokenizer and windows in Python, ONNX Runtime, tfqa span decoding.
"""

from __future__ import annotations

import json

from tfqa.cli import common  # Sets the Keras 2 environment first.

common.hide_pytorch()

from absl import app
from absl import flags

from tfqa import api
from tfqa import preflight
from tfqa.layout import best_checkpoint

_MODEL = flags.DEFINE_string(
    "model", None, "SavedModel version dir, export dir or tfqa_train run.")
_ONNX_MODEL = flags.DEFINE_string(
    "onnx_model", None, "EXPORT_DIR/onnx/model.onnx or model.int8.onnx (or "
    "EXPORT_DIR), instead of --model.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Checkpoint prefix of a training run, or 'best': "
    "its --keep_best checkpoint (default: newest readable).")
_VERIFY_MANIFEST = flags.DEFINE_bool(
    "verify_manifest", False, "Refuse a SavedModel whose files differ from "
    "its export's manifest.json (SHA-256).")
_QUESTION = flags.DEFINE_string("question", None, "A question.")
_CONTEXT = flags.DEFINE_string("context", None, "The text to answer it from.")
_INPUT_FILE = flags.DEFINE_string(
    "input_file", None, "SQuAD JSON whose questions to answer.")
_OUTPUT_FILE = flags.DEFINE_string(
    "output_file", None, "predictions.json to write (id -> answer text).")

HELP_GROUPS = {
    "Model": ["model", "onnx_model", "checkpoint", "verify_manifest"],
    "One question": ["question", "context"],
    "A file of questions": ["input_file", "output_file"],
}


def _check_flags():
  if not _MODEL.value and not _ONNX_MODEL.value:
    raise app.UsageError("--model is required (or --onnx_model for an ONNX "
                         "model).")
  if _MODEL.value and _ONNX_MODEL.value:
    raise app.UsageError("Pass --model or --onnx_model, not both.")
  if _ONNX_MODEL.value and _CHECKPOINT.value:
    raise app.UsageError("--checkpoint applies to training runs (--model), "
                         "not to --onnx_model.")
  one = _QUESTION.value is not None or _CONTEXT.value is not None
  many = _INPUT_FILE.value is not None or _OUTPUT_FILE.value is not None
  if one == many:
    raise app.UsageError("Pass either --question and --context, or "
                         "--input_file and --output_file.")
  if one and (_QUESTION.value is None or _CONTEXT.value is None):
    raise app.UsageError("--question and --context go together.")
  if many and (_INPUT_FILE.value is None or _OUTPUT_FILE.value is None):
    raise app.UsageError("--input_file and --output_file go together.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  _check_flags()
  # Before TensorFlow is imported and the model loaded: wrong inputs fail
  # at once.
  checkpoint = best_checkpoint.resolve(_MODEL.value, _CHECKPOINT.value)
  checked = preflight.check_predict(
      model=_MODEL.value, onnx_model=_ONNX_MODEL.value,
      checkpoint=checkpoint, input_file=_INPUT_FILE.value,
      output_file=_OUTPUT_FILE.value)
  # TensorFlow-backed (the predictor module imports TensorFlow): loaded
  # after the input checks, so a wrong flag or file fails in one line
  # without waiting for TensorFlow.
  from tfqa.inference import predictor as predictor_lib  # pylint: disable=import-outside-toplevel
  predictor = api.load_predictor(_ONNX_MODEL.value or _MODEL.value,
                                 onnx=bool(_ONNX_MODEL.value),
                                 verify_manifest=_VERIFY_MANIFEST.value,
                                 checkpoint=checkpoint, checked=checked)
  if _INPUT_FILE.value is not None:
    predictions = predictor_lib.predict_file(predictor, _INPUT_FILE.value,
                                             checked=checked)
    predictor_lib.write_predictions(_OUTPUT_FILE.value, predictions)
    print(json.dumps({"questions": len(predictions),
                      "answered": sum(bool(a.text)
                                      for a in predictions.values()),
                      "output_file": _OUTPUT_FILE.value}, indent=2))
    return
  answer = predictor(_QUESTION.value, _CONTEXT.value)
  print(f"answer: {answer.text if answer.text else '(no answer)'}")
  print(f"score: {answer.score:.4f}")
  print("context: " + predictor_lib.mark_answer(
      _CONTEXT.value, answer.start_char, answer.end_char))


def run():
  common.run_tool(main, __doc__, HELP_GROUPS)


if __name__ == "__main__":
  run()
