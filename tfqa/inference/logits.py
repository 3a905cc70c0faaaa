"""Logits functions of every model kind (Keras model, SavedModel, ONNX Runtime, TFLite, PyTorch) and the one loop from batches to per-window logits."""

from __future__ import annotations

from typing import Callable, Iterable, Mapping
import warnings
import weakref

import numpy as np
import tensorflow as tf

from tfqa.layout import exportdir
from tfqa.layout import fs

# (input_ids, attention_mask, token_type_ids) int32 [n, seq] ->
# (start_logits, end_logits) float32 [n, seq]: a model, a SavedModel
# signature, an ONNX Runtime session, a TFLite interpreter or a PyTorch model.
LogitsFn = Callable[..., tuple]
# Per window, unpadded: (start logits, end logits), each a list of NumPy
# arrays over windows.
WindowLogits = tuple[list, list]

# The start of TF's warning that tf.lite.Interpreter moves to ai_edge_litert.
_INTERPRETER_MOVED = r"\s*Warning: tf\.lite\.Interpreter is deprecated"

# One traced logits function per model (see model_logits_fn).
_LOGITS_FNS = weakref.WeakKeyDictionary()


def model_logits(model, inputs, *, training: bool = False):
  """A Keras QA model's (start_logits, end_logits), float32, for a dict of inputs.

  Other keys of `inputs` (a batch's example_index) are not the model's.
  """
  outputs = model({name: inputs[name] for name in
                   ("input_ids", "attention_mask", "token_type_ids")},
                  training=training)
  return (tf.cast(outputs.start_logits, tf.float32),
          tf.cast(outputs.end_logits, tf.float32))


def model_logits_fn(model) -> LogitsFn:
  """A Keras model's float32 logits as one tf.function, made once per model.

  Its input signature has dynamic batch and sequence axes, so it is traced
  once for the model and reused by every later call (a predictor answering
  question after question does not retrace). The returned function keeps
  the model alive; the cache of traced functions does not.
  """
  fn = _LOGITS_FNS.get(model)
  if fn is None:
    # A weak reference: the cache must not keep the model alive.
    model_ref = weakref.ref(model)
    spec = [tf.TensorSpec([None, None], tf.int32, name=name)
            for name in exportdir.LOGITS_INPUT_NAMES]

    @tf.function(input_signature=spec)
    def fn(input_ids, attention_mask, token_type_ids):
      return model_logits(model_ref(), {"input_ids": input_ids,
                                        "attention_mask": attention_mask,
                                        "token_type_ids": token_type_ids})

    _LOGITS_FNS[model] = fn

  def logits_fn(input_ids, attention_mask, token_type_ids, _model=model):
    del _model  # held only to keep the model alive while logits_fn is
    return fn(input_ids, attention_mask, token_type_ids)

  return logits_fn


def signature_logits_fn(loaded) -> LogitsFn:
  """The LogitsFn (NumPy out) of a loaded SavedModel's predict_logits."""

  def logits_fn(input_ids, attention_mask, token_type_ids):
    # `loaded` owns the variables: the closure keeps it alive.
    out = loaded.signatures[exportdir.LOGITS_SIGNATURE](
        input_ids=tf.cast(input_ids, tf.int32),
        attention_mask=tf.cast(attention_mask, tf.int32),
        token_type_ids=tf.cast(token_type_ids, tf.int32))
    return out["start_logits"].numpy(), out["end_logits"].numpy()

  return logits_fn


def saved_model_logits_fn(saved_model_dir: str) -> LogitsFn:
  """The LogitsFn of the predict_logits signature of a SavedModel directory."""
  # Registers the tokenizer ops of the SavedModel's serving_default graph:
  # only loading an export needs them, and training and evaluation import
  # this module without tensorflow_text.
  import tensorflow_text  # pylint: disable=import-outside-toplevel,unused-import

  return signature_logits_fn(tf.saved_model.load(saved_model_dir))


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
    # The optional `onnx` extra (setup.cfg): only ONNX models need it.
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


def onnx_logits_fn(session) -> LogitsFn:
  """The LogitsFn of an ONNX Runtime session with tfqa's input names."""

  def logits_fn(input_ids, attention_mask, token_type_ids):
    start, end = session.run(
        list(exportdir.LOGITS_OUTPUT_NAMES),
        {"input_ids": np.asarray(input_ids, np.int32),
         "attention_mask": np.asarray(attention_mask, np.int32),
         "token_type_ids": np.asarray(token_type_ids, np.int32)})
    return start, end

  return logits_fn


def tflite_logits_fn(path: str) -> LogitsFn:
  """The LogitsFn of a TFLite model with predict_logits' names."""
  # TF 2.21 warns on every Interpreter that it moves to ai_edge_litert, a
  # package outside tfqa's pinned dependencies; the one TF ships still works,
  # and a user of tfqa_export cannot act on the warning.
  with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=_INTERPRETER_MOVED,
                            category=UserWarning)
    interpreter = tf.lite.Interpreter(model_path=path)
  runner = interpreter.get_signature_runner()

  def logits_fn(input_ids, attention_mask, token_type_ids):
    out = runner(input_ids=np.asarray(input_ids, np.int32),
                 attention_mask=np.asarray(attention_mask, np.int32),
                 token_type_ids=np.asarray(token_type_ids, np.int32))
    return out["start_logits"], out["end_logits"]

  return logits_fn


def pytorch_logits_fn(pretrained_dir: str) -> LogitsFn | None:
  """PyTorch's reload of a save_pretrained directory; None without torch.

  What a PyTorch user runs: BertForQuestionAnswering.from_pretrained, which
  reads model.safetensors (a local directory).
  """
  try:
    # The optional `torch` extra (setup.cfg): without it, no PyTorch check.
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  # The PyTorch model class, needed only with torch: the SavedModel
  # predictor imports this module and never loads transformers
  # (tests/test_inference_predictor.py).
  import transformers  # pylint: disable=import-outside-toplevel

  model = transformers.BertForQuestionAnswering.from_pretrained(
      pretrained_dir, local_files_only=True)
  model.eval()

  def logits_fn(input_ids, attention_mask, token_type_ids):
    def long(array):
      return torch.as_tensor(np.asarray(array), dtype=torch.long)

    with torch.no_grad():
      out = model(input_ids=long(input_ids),
                  attention_mask=long(attention_mask),
                  token_type_ids=long(token_type_ids))
    return (out.start_logits.float().numpy(),
            out.end_logits.float().numpy())

  return logits_fn


def window_logits(logits_fn: LogitsFn, windows,
                  batches: Iterable[Mapping[str, object]]) -> WindowLogits:
  """Unpadded start and end logits of every window, in window order.

  The one loop from batches of windows to per-window logits, whatever runs
  the model.

  Args:
    logits_fn: see LogitsFn.
    windows: the features.Features the batches were made from.
    batches: dicts of "input_ids", "attention_mask", "token_type_ids"
      [n, seq] and "window_index" [n] that cover every window once
      (batching.length_sorted_batches).
  """
  lengths = windows.lengths
  starts, ends = [None] * len(windows), [None] * len(windows)
  for batch in batches:
    start, end = logits_fn(batch["input_ids"], batch["attention_mask"],
                           batch["token_type_ids"])
    start, end = np.asarray(start), np.asarray(end)
    for row, window in enumerate(np.asarray(batch["window_index"])):
      starts[window] = start[row, :lengths[window]]
      ends[window] = end[row, :lengths[window]]
  return starts, ends


def max_abs_diff(a: WindowLogits, b: WindowLogits) -> float:
  """Largest |difference| over every unpadded start and end logit."""
  worst = 0.0
  for side_a, side_b in zip(a, b):
    for x, y in zip(side_a, side_b):
      worst = max(worst, float(np.max(np.abs(np.asarray(x, np.float64) -
                                              np.asarray(y, np.float64)),
                                       initial=0.0)))
  return worst
