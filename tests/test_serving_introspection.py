"""Tests for tfqa.serving.introspection: the custom ops a SavedModel needs."""

import pytest
import tensorflow as tf

from tfqa import serving


def test_custom_ops_used_lists_only_tensorflow_text_ops(serving_saved_model):
  _, export_dir = serving_saved_model
  ops = serving.custom_ops_used(export_dir)
  assert ops == ["NormalizeUTF8", "RegexSplitWithOffsets",
                 "WordpieceTokenizeWithOffsets"]
  assert not any(hasattr(tf.raw_ops, op) for op in ops)


def test_custom_ops_used_rejects_a_directory_without_saved_model(tmp_path):
  with pytest.raises(ValueError, match="holds no saved_model.pb"):
    serving.custom_ops_used(str(tmp_path))
