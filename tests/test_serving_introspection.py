"""Tests for tfqa.serving.introspection: a SavedModel's saved_model.pb, signatures and the custom ops it needs."""

import pytest
import tensorflow as tf

from tfqa import serving
from tfqa.serving import introspection


def test_custom_ops_used_lists_only_tensorflow_text_ops(serving_saved_model):
  _, export_dir = serving_saved_model
  ops = serving.custom_ops_used(export_dir)
  assert ops == ["NormalizeUTF8", "RegexSplitWithOffsets",
                 "WordpieceTokenizeWithOffsets"]
  assert not any(hasattr(tf.raw_ops, op) for op in ops)


def test_custom_ops_used_rejects_a_directory_without_saved_model(tmp_path):
  with pytest.raises(ValueError, match="holds no saved_model.pb"):
    serving.custom_ops_used(str(tmp_path))


def test_signature_specs_and_proto_of_a_saved_model(tmp_path):
  module = tf.Module()
  module.double = tf.function(
      lambda x: {"y": 2 * x},
      input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
  tf.saved_model.save(module, str(tmp_path), signatures={
      "serving_default": module.double.get_concrete_function()})
  assert introspection.signature_specs(str(tmp_path)) == {
      "serving_default": {
          "inputs": {"x": {"dtype": "float32", "shape": [None, 3]}},
          "outputs": {"y": {"dtype": "float32", "shape": [None, 3]}}}}
  assert len(introspection.saved_model_proto(str(tmp_path)).meta_graphs) == 1


def test_saved_model_proto_names_a_directory_without_one(tmp_path):
  with pytest.raises(ValueError, match=r"holds no saved_model.pb\. Expected "
                                       r"a directory written by "
                                       r"tf.saved_model.save"):
    introspection.saved_model_proto(str(tmp_path))
