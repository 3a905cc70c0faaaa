"""Tests for tfqa.inference.logits: a Keras model's float32 logits, the logits function of each model kind, the window loop, max_abs_diff."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from tfqa.inference import logits as logits_lib
from tfqa.model import modeling
from tfqa.model import source as model_source

from conftest import FakeQAModel


def _inputs(batch, length, **extra):
  ids = np.arange(batch * length, dtype=np.int32).reshape(batch, length) % 50
  return {"input_ids": tf.constant(ids),
          "attention_mask": tf.ones((batch, length), tf.int32),
          "token_type_ids": tf.zeros((batch, length), tf.int32), **extra}


def _tiny_model(bert_config_file, vocab_file, *, dropout=True):
  model, _ = modeling.build_model(
      model_source.ModelSource("bert_config", bert_config_file, vocab_file),
      dropout=dropout)
  return model


def test_model_logits_are_float32_batch_by_length(bert_config_file, vocab_file):
  model = _tiny_model(bert_config_file, vocab_file)
  inputs = _inputs(3, 7, example_index=tf.constant([0, 1, 2]))
  start, end = logits_lib.model_logits(model, inputs)
  assert start.dtype == end.dtype == tf.float32
  assert start.shape == end.shape == (3, 7)
  outputs = model({k: inputs[k] for k in ("input_ids", "attention_mask",
                                          "token_type_ids")}, training=False)
  np.testing.assert_array_equal(start.numpy(), outputs.start_logits.numpy())
  np.testing.assert_array_equal(end.numpy(), outputs.end_logits.numpy())


def test_model_logits_without_dropout_are_deterministic_in_training(
    bert_config_file, vocab_file):
  model = _tiny_model(bert_config_file, vocab_file, dropout=False)
  inputs = _inputs(2, 5)
  first, _ = logits_lib.model_logits(model, inputs, training=True)
  second, _ = logits_lib.model_logits(model, inputs, training=False)
  np.testing.assert_allclose(first.numpy(), second.numpy(), rtol=1e-6)


def test_model_logits_are_float32_under_mixed_float16(bert_config_file,
                                                       vocab_file):
  import tf_keras  # pylint: disable=import-outside-toplevel
  tf_keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    model = _tiny_model(bert_config_file, vocab_file)
    start, end = logits_lib.model_logits(model, _inputs(2, 5))
    raw = model(_inputs(2, 5), training=False).start_logits
  finally:
    tf_keras.mixed_precision.set_global_policy("float32")
  assert raw.dtype == tf.float16
  assert start.dtype == end.dtype == tf.float32
  np.testing.assert_array_equal(start.numpy(), raw.numpy().astype(np.float32))


def _counting_model():
  """Start logit = token id (float16), end logit = mask; counts traces."""
  return FakeQAModel(lambda inputs: tf.cast(inputs["input_ids"], tf.float16),
                     lambda inputs: tf.cast(inputs["attention_mask"],
                                            tf.float32))


def test_model_logits_fn_is_traced_once_per_model():
  model = _counting_model()
  for batch, width in ((1, 3), (4, 9), (2, 17)):
    fn = logits_lib.model_logits_fn(model)
    ids = np.arange(batch * width, dtype=np.int32).reshape(batch, width)
    start, end = fn(ids, np.ones_like(ids), np.zeros_like(ids))
    assert start.dtype == end.dtype == tf.float32
    np.testing.assert_array_equal(start.numpy(), ids.astype(np.float32))
  assert model.traces == 1
  other = _counting_model()
  logits_lib.model_logits_fn(other)(ids, np.ones_like(ids), np.zeros_like(ids))
  assert (model.traces, other.traces) == (1, 1)


def test_model_logits_fn_keeps_its_model_alive():
  logits_fn = logits_lib.model_logits_fn(_counting_model())
  start, _ = logits_fn(np.array([[4, 5]], np.int32), np.ones((1, 2), np.int32),
                       np.zeros((1, 2), np.int32))
  assert start.numpy().tolist() == [[4.0, 5.0]]


def test_window_logits_scatter_batches_back_unpadded():
  class Windows:
    lengths = np.array([2, 3, 1])

    def __len__(self):
      return 3

  batches = [{"input_ids": np.array([[5, 6, 7], [8, 9, 0]]),
              "attention_mask": None, "token_type_ids": None,
              "window_index": np.array([1, 0])},
             {"input_ids": np.array([[4]]), "attention_mask": None,
              "token_type_ids": None, "window_index": np.array([2])}]
  starts, ends = logits_lib.window_logits(
      lambda ids, mask, types: (ids * 1.0, -ids * 1.0), Windows(), batches)
  assert [s.tolist() for s in starts] == [[8.0, 9.0], [5.0, 6.0, 7.0], [4.0]]
  assert [e.tolist() for e in ends] == [[-8.0, -9.0], [-5.0, -6.0, -7.0],
                                        [-4.0]]


def test_max_abs_diff_over_starts_and_ends():
  a = ([np.array([1.0, 2.0])], [np.array([0.0])])
  b = ([np.array([1.0, 2.5])], [np.array([-0.75])])
  assert logits_lib.max_abs_diff(a, b) == 0.75
  assert logits_lib.max_abs_diff(a, a) == 0.0


def test_signature_logits_fn_casts_to_int32_and_returns_numpy():
  seen = {}

  def signature(**inputs):
    seen.update({name: t.dtype for name, t in inputs.items()})
    return {"start_logits": tf.cast(inputs["input_ids"], tf.float32),
            "end_logits": -tf.cast(inputs["token_type_ids"], tf.float32)}

  class Loaded:
    signatures = {"predict_logits": signature}

  start, end = logits_lib.signature_logits_fn(Loaded())(
      np.array([[3, 4]], np.int64), np.array([[1, 1]], np.int64),
      np.array([[0, 1]], np.int64))
  assert seen == {"input_ids": tf.int32, "attention_mask": tf.int32,
                  "token_type_ids": tf.int32}
  assert isinstance(start, np.ndarray) and start.tolist() == [[3.0, 4.0]]
  assert end.tolist() == [[0.0, -1.0]]


def test_onnx_logits_fn_feeds_the_graph_names_as_int32():
  class Session:
    def run(self, outputs, feeds):
      self.outputs = outputs
      self.dtypes = {name: a.dtype for name, a in feeds.items()}
      return feeds["input_ids"] * 1.0, feeds["attention_mask"] * -1.0

  session = Session()
  start, end = logits_lib.onnx_logits_fn(session)([[7, 8]], [[1, 0]],
                                                  [[0, 0]])
  assert session.outputs == ["start_logits", "end_logits"]
  assert session.dtypes == {"input_ids": np.int32, "attention_mask": np.int32,
                            "token_type_ids": np.int32}
  assert start.tolist() == [[7.0, 8.0]] and end.tolist() == [[-1.0, 0.0]]


def test_onnx_session_without_onnxruntime_names_the_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, "onnxruntime", None)
  with pytest.raises(ImportError, match=r"^Running ONNX models needs "
                     r"onnxruntime: pip install 'tfqa\[onnx\]'"):
    logits_lib.onnx_session("model.onnx")


def test_pytorch_logits_fn_is_none_without_torch(monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)
  assert logits_lib.pytorch_logits_fn("pretrained") is None


def test_max_abs_diff_of_no_windows_is_zero():
  assert logits_lib.max_abs_diff(([], []), ([], [])) == 0.0
