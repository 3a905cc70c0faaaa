"""The TF Serving SavedModel of a run: serving module, save, warm-up requests, server requirements."""

from __future__ import annotations

import os
from typing import Sequence

import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from tfqa import config as config_lib
from tfqa import serving
from tfqa.data import squad as squad_lib
from tfqa.inference import trained_model
from tfqa.layout import exportdir
from tfqa.layout import fs
from tfqa.layout import rundir

# tensorflow/serving RELEASE.md: 2.0.0 linked only some TF Text ops (no
# RegexSplitWithOffsets, tensorflow/text#200); 2.2.0 "Update TF Text to
# v2.2.0" links the full TF Text op library into the model server.
_TF_TEXT_OPS_IN_SERVING_SINCE = "2.2.0"


class _ModelLogits(tf.Module):
  """`logits_fn` of the serving module: the HF model's float32 logits.

  Only the model's variables are tracked, not the Keras model: saving a
  Keras model traces every layer's call functions into the SavedModel
  (several times slower to save, larger, and never used by the signatures).
  """

  def __init__(self, model):
    super().__init__(name="model_logits")
    self.model_variables = list(model.variables)
    self._call = lambda inputs: model(inputs, training=False)

  def __call__(self, input_ids, attention_mask, token_type_ids):
    outputs = self._call({"input_ids": input_ids,
                          "attention_mask": attention_mask,
                          "token_type_ids": token_type_ids})
    return (tf.cast(outputs.start_logits, tf.float32),
            tf.cast(outputs.end_logits, tf.float32))


def serving_module(trained: trained_model.TrainedModel, vocab_file: str, *,
                   max_windows_per_batch: int | None = (
                       config_lib.ExportConfig.max_windows_per_batch)
                   ) -> serving.QAServingModule:
  """The raw-text QA module of a run (its vocab, casing, windows, decoding)."""
  return serving.QAServingModule(
      logits_fn=_ModelLogits(trained.model), vocab_file=vocab_file,
      do_lower_case=bool(trained.tokenizer.do_lower_case),
      feature_config=trained.run_config.features,
      decode_config=trained.run_config.decode,
      max_windows_per_batch=max_windows_per_batch)


def save_saved_model(trained: trained_model.TrainedModel, directory: str, *,
                     max_windows_per_batch: int | None) -> None:
  """Writes the SavedModel (serving_default and predict_logits) to `directory`."""
  vocab_file = os.path.join(trained.model_dir, rundir.TOKENIZER_SUBDIR,
                            "vocab.txt")
  with fs.local_temp_dir() as scratch:
    if not fs.isfile(vocab_file):
      # A tokenizer saved as tokenizer.json only: write its vocab out (the
      # SavedModel keeps its own copy as an asset).
      vocab_file = trained.tokenizer.save_vocabulary(scratch)[0]
    module = serving_module(trained, vocab_file,
                            max_windows_per_batch=max_windows_per_batch)
    tf.saved_model.save(module, directory, signatures={
        exportdir.SERVING_SIGNATURE: module.answer.get_concrete_function(),
        exportdir.LOGITS_SIGNATURE: module.predict_logits.get_concrete_function(),
    })


def warmup_records(examples: Sequence[squad_lib.SquadExample], *,
                   model_name: str,
                   num_requests: int = config_lib.ExportConfig.num_warmup_requests
                   ) -> list[bytes]:
  """Serialized PredictionLog records: one serving_default request each.

  Uses the first `num_requests` examples (real questions and contexts,
  so warm-up runs the same windows and decoding as traffic).
  """
  records = []
  for example in examples[:num_requests]:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(
        name=model_name, signature_name=exportdir.SERVING_SIGNATURE))
    request.inputs["question"].CopyFrom(
        tf.make_tensor_proto([example.question], dtype=tf.string))
    request.inputs["context"].CopyFrom(
        tf.make_tensor_proto([example.context], dtype=tf.string))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))
    records.append(log.SerializeToString())
  return records


def write_warmup_requests(path: str,
                          examples: Sequence[squad_lib.SquadExample], *,
                          model_name: str,
                          num_requests: int = (
                              config_lib.ExportConfig.num_warmup_requests)
                          ) -> None:
  """Writes `warmup_records` as the TFRecord file TF Serving looks for."""
  fs.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for record in warmup_records(examples, model_name=model_name,
                                 num_requests=num_requests):
      writer.write(record)


def serving_requirements(custom_ops: Sequence[str]) -> dict:
  """What a TF Serving model server needs to load this export."""
  major, minor = tf.__version__.split(".")[:2]
  return {
      "oldest_tf_serving": f"{major}.{minor}.0",
      "note": (
          f"Written by TensorFlow {tf.__version__}: SavedModels load in the "
          f"same or newer TensorFlow, so use tensorflow/serving >= "
          f"{major}.{minor}. The graph uses the TF Text ops "
          f"{', '.join(custom_ops) or '(none)'}; official TF Serving "
          f"binaries and images link the TF Text op library since "
          f"{_TF_TEXT_OPS_IN_SERVING_SINCE} (tensorflow/serving RELEASE.md; "
          f"2.0.0 had only some TF Text ops, without "
          f"RegexSplitWithOffsets). A custom model server must link "
          f"@org_tensorflow_text//tensorflow_text:ops_lib. Not verified "
          f"against a running model server here."),
      "verified_with_model_server": False,
  }
