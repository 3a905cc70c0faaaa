"""Answers questions with an exported ONNX model: tfqa tokenizer and windows, ONNX Runtime logits, tfqa span decoding.

Needs the `onnx` extra (onnxruntime). The export directory supplies the rest:

  export_dir/
    onnx/model.onnx, onnx/model.int8.onnx   what `OnnxPredictor` runs
    pretrained/                             the tokenizer (vocab, casing)
    manifest.json                           the run config (windows, decoding)
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from tfqa import answers
from tfqa import config as config_lib
from tfqa import data as data_lib
from tfqa import exportdir
from tfqa import features as features_lib
from tfqa import integrity
from tfqa import modeling
from tfqa.layout import fs

ONNX_SUBDIR = exportdir.ONNX_SUBDIR
ONNX_FILE = exportdir.ONNX_FILE
ONNX_INT8_FILE = exportdir.ONNX_INT8_FILE
# Names shared by the SavedModel's predict_logits signature and the ONNX graph.
INPUT_NAMES = exportdir.LOGITS_INPUT_NAMES
OUTPUT_NAMES = exportdir.LOGITS_OUTPUT_NAMES
# Windows per ONNX Runtime call, grouped by length. Small chunks, each
# padded to its own longest window, beat one call padded to the longest
# window on CPUs (the serving graph's default max_windows_per_batch, 8, for
# the same reason; BENCHMARKS.md).
BATCH_SIZE = 8

# A LogitsFn (modeling.LogitsFn) over NumPy arrays.
LogitsFn = modeling.LogitsFn


def onnx_session(path: str, *, threads: int | None = None,
                 spinning: bool = False):
  """An ONNX Runtime CPU session for `path`.

  Args:
    path: an .onnx file.
    threads: intra-op threads (default: ONNX Runtime's, one per core).
    spinning: let idle intra-op threads spin-wait for work (ONNX Runtime's
      default). Off here: on a CPU shared with other processes, spinning
      threads compete with the ones doing the work (measured on 2 shared
      cores: MiniLM int8 at batch 1, 70-89 ms without spinning, 122-126 ms
      with it; BENCHMARKS.md). Turn it on for a dedicated machine.

  Raises:
    ImportError: onnxruntime is not installed (the `onnx` extra).
  """
  try:
    import onnxruntime  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ImportError(
        "Running ONNX models needs onnxruntime: pip install 'tfqa[onnx]' "
        "(see BUILD.md, Extras).") from None
  options = onnxruntime.SessionOptions()
  options.add_session_config_entry("session.intra_op.allow_spinning",
                                   "1" if spinning else "0")
  if threads is not None:
    options.intra_op_num_threads = threads
  # From its bytes for a URL (ONNX Runtime reads local files only).
  model = fs.read_bytes(path) if fs.is_url(path) else path
  return onnxruntime.InferenceSession(model, options,
                                      providers=["CPUExecutionProvider"])


def session_logits_fn(session) -> LogitsFn:
  """The LogitsFn of an ONNX Runtime session with tfqa's input names."""

  def logits_fn(input_ids, attention_mask, token_type_ids):
    start, end = session.run(
        list(OUTPUT_NAMES),
        {"input_ids": np.asarray(input_ids, np.int32),
         "attention_mask": np.asarray(attention_mask, np.int32),
         "token_type_ids": np.asarray(token_type_ids, np.int32)})
    return start, end

  return logits_fn


def decode(examples: Sequence[data_lib.SquadExample], tokenizer, logits_fn:
           LogitsFn, run_config: config_lib.RunConfig, *,
           batch_size: int = BATCH_SIZE) -> answers.Predictions:
  """Windows, logits from `logits_fn` and span decoding, with the run's settings."""
  windows = features_lib.build_features(examples, tokenizer,
                                        run_config.features)
  starts, ends = modeling.window_logits(
      logits_fn, windows,
      modeling.length_sorted_batches(windows, batch_size=batch_size))
  return answers.decode_predictions(examples, windows, starts, ends,
                                    run_config.decode)


def resolve_onnx_model(path: str) -> tuple[str, str]:
  """(model file, export directory) for an .onnx file or an export directory.

  Args:
    path: EXPORT_DIR/onnx/<name>.onnx, or EXPORT_DIR (its float model).

  Raises:
    ValueError: neither, naming what was looked for.
  """
  if fs.isdir(path):
    model = os.path.join(path, ONNX_SUBDIR, ONNX_FILE)
    if not fs.isfile(model):
      raise ValueError(f"{path} has no {ONNX_SUBDIR}/{ONNX_FILE}. Export "
                       f"with tfqa_export --onnx, or pass the .onnx file.")
    return model, path
  if not fs.isfile(path) or not path.endswith(".onnx"):
    raise ValueError(f"--onnx_model={path} is not an .onnx file or an export "
                     f"directory. Expected EXPORT_DIR/{ONNX_SUBDIR}/"
                     f"{ONNX_FILE} (or {ONNX_INT8_FILE}) written by "
                     f"tfqa_export --onnx.")
  return path, os.path.dirname(os.path.dirname(fs.abspath(path)))


class OnnxPredictor:
  """Answers raw questions with an exported ONNX model (float or int8).

  Tokenization and windows come from tfqa.features with the export's
  tokenizer (pretrained/) and run config (manifest.json); the logits from
  ONNX Runtime; the answers from tfqa.answers, so answers match the
  SavedModel's up to the model's logits.
  """

  def __init__(self, path: str, *, verify: bool = False,
               threads: int | None = None):
    """Loads the model, its export's tokenizer and run config.

    Args:
      path: an .onnx file under EXPORT_DIR/onnx/, or EXPORT_DIR.
      verify: check the file's SHA-256 against manifest.json first.
      threads: ONNX Runtime intra-op threads (default: ONNX Runtime's).

    Raises:
      ValueError: not an ONNX export, or a failed `verify`.
      ImportError: onnxruntime is not installed.
    """
    self.model_path, self.export_dir = resolve_onnx_model(path)
    manifest_path = os.path.join(self.export_dir, exportdir.MANIFEST_FILE)
    pretrained = os.path.join(self.export_dir, exportdir.PRETRAINED_SUBDIR)
    if not fs.isfile(manifest_path) or not fs.isdir(pretrained):
      raise ValueError(
          f"{self.model_path} needs its export directory {self.export_dir} "
          f"with manifest.json (run config) and pretrained/ (tokenizer); "
          f"keep onnx/ inside the directory tfqa_export wrote.")
    if verify:
      integrity.verify_digests(
          self.export_dir,
          parts=(f"{ONNX_SUBDIR}/{os.path.basename(self.model_path)}",),
          subject=self.model_path)
    manifest = exportdir.read_manifest(self.export_dir)
    self.run_config = config_lib.RunConfig.from_dict(
        manifest["run_config"], source=f"{manifest_path}: run_config")
    self.tokenizer = features_lib.load_tokenizer(pretrained)
    self._logits_fn = session_logits_fn(onnx_session(self.model_path,
                                                     threads=threads))

  def answer(self, questions: Sequence[str],
             contexts: Sequence[str]) -> list:
    """One predict.Answer per question."""
    from tfqa import predict  # pylint: disable=import-outside-toplevel

    predict.check_same_length(questions, contexts)
    if not questions:
      return []
    examples = data_lib.examples_from_text(questions, contexts)
    predictions = decode(examples, self.tokenizer, self._logits_fn,
                         self.run_config)
    results = []
    for e in examples:
      p = predictions.by_id[e.id]
      if self._is_empty(e.question) or self._is_empty(e.context):
        # As serving_default: no question or no context, no answer; its
        # score is the null score (v2.0) or 0.
        null_score = p.score + p.null_odds if p.text else p.score
        results.append(predict.Answer(
            "", float(null_score) if self.run_config.decode
            .version_2_with_negative else 0.0, -1, -1))
      else:
        results.append(predict.Answer(p.text, float(p.score), p.start_char,
                                      p.end_char))
    return results

  def _is_empty(self, text: str) -> bool:
    """Whether `text` has no word piece (the graph's empty row)."""
    return not self.tokenizer.tokenize(text)
