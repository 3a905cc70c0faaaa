"""Tests for tfqa.layout.checkpointing: contents, strict restore, fallback on damage, mismatch errors."""

import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfqa.layout import checkpointing
from tfqa.inference import logits as logits_lib
from tfqa.model import modeling
from tfqa.model import source as model_source
from tfqa.training import optimization

from conftest import tiny_bert_config


@pytest.fixture(autouse=True)
def _generator_dropout():
  tf_keras.backend.experimental.enable_tf_random_generator()
  yield
  tf_keras.backend.experimental.enable_tf_random_generator()


def _state(tmp_path, seed=0, **config):
  path = tmp_path / f"bert_{seed}_{len(config)}.json"
  path.write_text(json.dumps(tiny_bert_config(**config)))
  tf_keras.utils.set_random_seed(seed)
  model, _ = modeling.build_model(
      model_source.ModelSource("bert_config", str(path), ""))
  optimizer = optimization.create_optimizer(
      learning_rate=1e-3, total_steps=10, warmup_ratio=0.0, weight_decay=0.0,
      clip_norm=0.0)
  return checkpointing.new_state(model, optimizer, seed=seed)


def _train_one_step(state):
  inputs = {"input_ids": tf.constant([[2, 5, 6, 3, 7, 8, 3]]),
            "attention_mask": tf.ones([1, 7], tf.int32),
            "token_type_ids": tf.constant([[0, 0, 0, 0, 1, 1, 1]])}
  with tf.GradientTape() as tape:
    start, end = logits_lib.model_logits(state.model, inputs, training=True)
    loss = tf.reduce_sum(start) + tf.reduce_sum(end)
  variables = state.model.trainable_variables
  state.optimizer.apply_gradients(zip(tape.gradient(loss, variables),
                                      variables))


def _saved(tmp_path, steps=(1, 2)):
  state = _state(tmp_path)
  manager = checkpointing.make_manager(state, str(tmp_path), keep=5)
  paths = []
  for _ in steps:
    _train_one_step(state)
    paths.append(checkpointing.save(manager, state))
  return state, paths


def _keys(prefix):
  return {name for name, _ in tf.train.list_variables(prefix)}


def test_checkpoint_holds_the_whole_training_state(tmp_path):
  state, (path, _) = _saved(tmp_path)
  assert os.path.basename(path) == "ckpt-1"
  keys = _keys(path)
  tops = {k.split("/")[0] for k in keys}
  assert tops == {"model", "optimizer", "epoch", "rng", "dropout_rngs",
                  "model_signature", "save_counter",
                  "_CHECKPOINTABLE_OBJECT_GRAPH"}
  dropout_layers = [l for l in state.model.submodules
                    if isinstance(l, tf_keras.layers.Dropout)]
  # Embeddings, attention probs, attention output, FFN output.
  assert len(state.dropout_rngs) == len(dropout_layers) == 4
  assert {f"dropout_rngs/{i}/_state_var/.ATTRIBUTES/VARIABLE_VALUE"
          for i in range(4)} <= keys
  # Two Adam slots (m, v) per trainable weight, plus the step counter.
  slots = [k for k in keys if k.startswith("optimizer/_variables/")]
  assert len(slots) == 2 * len(state.model.trainable_variables)
  reader = tf.train.load_checkpoint(path)
  assert reader.get_tensor(
      "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 1


def test_restore_brings_back_weights_optimizer_and_generators(tmp_path):
  state, (first, _) = _saved(tmp_path)
  os.makedirs(tmp_path / "other")
  fresh = _state(tmp_path / "other", seed=1)
  checkpointing.restore(fresh, first)
  reader = tf.train.load_checkpoint(first)
  assert int(fresh.step.numpy()) == 1
  np.testing.assert_array_equal(
      fresh.dropout_rngs[0].state.numpy(),
      reader.get_tensor("dropout_rngs/0/_state_var/.ATTRIBUTES/VARIABLE_VALUE"))
  name = "model/bert/embeddings/weight/.ATTRIBUTES/VARIABLE_VALUE"
  np.testing.assert_array_equal(
      fresh.model.bert.embeddings.weight.numpy(), reader.get_tensor(name))


def _flip_bytes(path, offset_from_middle=0):
  data = bytearray(open(path, "rb").read())
  position = len(data) // 2 + offset_from_middle
  data[position] ^= 0xFF
  open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("damage", ["bitflip_data", "truncate_data",
                                    "zero_index", "delete_data"])
def test_latest_readable_falls_back_past_a_damaged_checkpoint(
    tmp_path, damage, caplog):
  _, (first, second) = _saved(tmp_path)
  data_file = second + ".data-00000-of-00001"
  if damage == "bitflip_data":
    _flip_bytes(data_file)
  elif damage == "truncate_data":
    open(data_file, "r+b").truncate(os.path.getsize(data_file) // 2)
  elif damage == "zero_index":
    open(second + ".index", "wb").write(
        b"\0" * os.path.getsize(second + ".index"))
  else:
    os.remove(data_file)
  with caplog.at_level("WARNING"):
    assert checkpointing.latest_readable(str(tmp_path)) == first
  assert "ckpt-2" in caplog.text and "unreadable" in caplog.text


def test_a_bitflip_is_named_by_verification(tmp_path):
  _, (_, second) = _saved(tmp_path)
  _flip_bytes(second + ".data-00000-of-00001")
  with pytest.raises(checkpointing.CheckpointError,
                     match=r"ckpt-2 is unreadable: .*Checksum does not match"):
    checkpointing.verify_readable(second)


def test_damaged_state_file_still_finds_checkpoints_on_disk(tmp_path):
  _, (_, second) = _saved(tmp_path)
  state_file = os.path.join(checkpointing.checkpoint_dir(str(tmp_path)),
                            "checkpoint")
  open(state_file, "w").write("garbage {{{")
  assert checkpointing.latest_readable(str(tmp_path)) == second


def test_no_readable_checkpoint_is_a_clear_error(tmp_path):
  _, (first, second) = _saved(tmp_path)
  for prefix in (first, second):
    os.remove(prefix + ".data-00000-of-00001")
  with pytest.raises(checkpointing.CheckpointError,
                     match=r"No readable checkpoint in .*checkpoints: "
                           r"Checkpoint .*ckpt-2 is unreadable"):
    checkpointing.latest_readable(str(tmp_path))


def test_empty_directory_has_no_checkpoint(tmp_path):
  assert checkpointing.latest_readable(str(tmp_path)) is None


def test_restoring_into_another_architecture_lists_the_mismatches(tmp_path):
  _, (first, _) = _saved(tmp_path)
  os.makedirs(tmp_path / "wide")
  wider = _state(tmp_path / "wide", hidden_size=16, intermediate_size=32)
  with pytest.raises(checkpointing.CheckpointError) as error:
    checkpointing.restore(wider, first)
  message = str(error.value)
  assert "different architecture" in message
  vocab_size = tiny_bert_config()["vocab_size"]
  assert (f"bert/embeddings/word_embeddings/weight:0: checkpoint "
          f"({vocab_size}, 32), model ({vocab_size}, 16)") in message
  with pytest.raises(checkpointing.CheckpointError, match="weight\\(s\\) differ"):
    checkpointing.restore_model(wider.model, first)


def test_restoring_a_foreign_checkpoint_is_refused(tmp_path):
  variable = tf.Variable(1.0)
  prefix = tf.train.Checkpoint(v=variable).save(str(tmp_path / "foreign"))
  state = _state(tmp_path)
  with pytest.raises(checkpointing.CheckpointError,
                     match="not written by tfqa"):
    checkpointing.restore(state, prefix)


def test_dropout_generators_require_generator_mode(tmp_path):
  tf_keras.backend.experimental.disable_tf_random_generator()
  path = tmp_path / "bert.json"
  path.write_text(json.dumps(tiny_bert_config()))
  model, _ = modeling.build_model(
      model_source.ModelSource("bert_config", str(path), ""))
  with pytest.raises(ValueError, match="enable_tf_random_generator"):
    checkpointing.dropout_generators(model)


@pytest.mark.parametrize("content", [
    b"",  # truncated to nothing: TF raises ValueError
    b"\0" * 64,  # zeroed
    b'model_checkpoint_path: "ckpt-\xff"\n',  # not UTF-8: TF raises
    b"garbage {{{",
])
def test_damaged_state_file_is_rebuilt_before_the_manager_reads_it(
    tmp_path, content, caplog):
  state, (first, second) = _saved(tmp_path)
  state_file = os.path.join(checkpointing.checkpoint_dir(str(tmp_path)),
                            "checkpoint")
  open(state_file, "wb").write(content)
  with caplog.at_level("WARNING"):
    manager = checkpointing.make_manager(state, str(tmp_path), keep=5)
  assert "Rebuilding the damaged checkpoint state file" in caplog.text
  assert manager.latest_checkpoint == second
  assert manager.checkpoints == [first, second]
  assert checkpointing.latest_readable(str(tmp_path)) == second


@pytest.mark.parametrize("planted", ["../../elsewhere/ckpt-9",
                                     "/tmp/elsewhere/ckpt-9"])
def test_state_file_naming_a_checkpoint_outside_is_refused(tmp_path, planted):
  _saved(tmp_path)
  state_file = os.path.join(checkpointing.checkpoint_dir(str(tmp_path)),
                            "checkpoint")
  open(state_file, "w").write(f'model_checkpoint_path: "{planted}"\n'
                              f'all_model_checkpoint_paths: "{planted}"\n')
  with pytest.raises(checkpointing.CheckpointError,
                     match=rf"checkpoints/checkpoint names "
                           rf"'[^']*{re.escape(planted)}', which is outside "
                           rf".*checkpoints; refused"):
    checkpointing.latest_readable(str(tmp_path))


def _saved_relative(tmp_path, monkeypatch, steps=(1, 2, 3),
                    model_dir="runs/a"):
  """Checkpoints saved under a relative run directory."""
  monkeypatch.chdir(tmp_path)
  state = _state(tmp_path)
  manager = checkpointing.make_manager(state, model_dir, keep=5)
  for _ in steps:
    _train_one_step(state)
    checkpointing.save(manager, state)
  return state


def test_a_relative_model_dir_lists_each_checkpoint_once(tmp_path,
                                                          monkeypatch,
                                                          caplog):
  # The state file's relative names were joined with the directory twice
  # (runs/a/checkpoints/runs/a/checkpoints/ckpt-3), then taken for damage.
  _saved_relative(tmp_path, monkeypatch)
  assert checkpointing.candidate_checkpoints("runs/a") == [
      "runs/a/checkpoints/ckpt-3", "runs/a/checkpoints/ckpt-2",
      "runs/a/checkpoints/ckpt-1"]
  with caplog.at_level("WARNING"):
    assert (checkpointing.latest_readable("runs/a") ==
            "runs/a/checkpoints/ckpt-3")
  assert caplog.text == ""


def test_relative_and_absolute_model_dirs_find_the_same_checkpoints(
    tmp_path, monkeypatch):
  _saved_relative(tmp_path, monkeypatch)
  relative = checkpointing.candidate_checkpoints("./runs/a")
  absolute = checkpointing.candidate_checkpoints(str(tmp_path / "runs" / "a"))
  assert [os.path.abspath(p) for p in relative] == absolute


def test_checkpoints_on_disk_are_found_under_a_name_with_glob_characters(
    tmp_path, monkeypatch):
  _saved_relative(tmp_path, monkeypatch, model_dir="runs/a[1]")
  os.remove("runs/a[1]/checkpoints/checkpoint")
  # (TensorFlow's reader cannot open them: it takes the prefix for a
  # pattern. preflight refuses such a --model_dir for training.)
  assert checkpointing.candidate_checkpoints("runs/a[1]") == [
      "runs/a[1]/checkpoints/ckpt-3", "runs/a[1]/checkpoints/ckpt-2",
      "runs/a[1]/checkpoints/ckpt-1"]


def test_a_relative_model_dir_still_refuses_a_state_file_pointing_out(
    tmp_path, monkeypatch):
  _saved_relative(tmp_path, monkeypatch)
  with open("runs/a/checkpoints/checkpoint", "w") as f:
    f.write('model_checkpoint_path: "../../../elsewhere/ckpt-9"\n')
  with pytest.raises(checkpointing.CheckpointError,
                     match=r"^runs/a/checkpoints/checkpoint names "
                           r"'\.\./\.\./\.\./elsewhere/ckpt-9', which is "
                           r"outside runs/a/checkpoints; refused"):
    checkpointing.latest_readable("runs/a")


@pytest.mark.parametrize("error", [
    tf.errors.OutOfRangeError(None, None, "File too large"),  # EFBIG
    tf.errors.ResourceExhaustedError(None, None, "No space left on device"),
    OSError(30, "Read-only file system"),
])
def test_a_failed_checkpoint_write_is_an_os_error_naming_the_last_good_one(
    tmp_path, monkeypatch, error):
  state, (_, second) = _saved(tmp_path)
  manager = checkpointing.make_manager(state, str(tmp_path), keep=5)
  _train_one_step(state)
  staged = os.path.join(checkpointing.checkpoint_dir(str(tmp_path)),
                        "ckpt-3_temp")
  os.makedirs(staged)

  def fail(**kwargs):
    raise error

  monkeypatch.setattr(manager, "save", fail)
  with pytest.raises(checkpointing.CheckpointWriteError,
                     match=rf"^Could not write checkpoint ckpt-3 to "
                           rf"{re.escape(str(tmp_path))}/checkpoints: "
                           rf"{type(error).__name__}: .*The checkpoints "
                           rf"written before it are untouched \(newest: "
                           rf"{re.escape(second)}\)\. Free disk space or make "
                           rf"the directory writable") as raised:
    checkpointing.save(manager, state)
  # Not TensorFlow's OutOfRangeError, which Keras takes for the end of data.
  assert isinstance(raised.value, OSError)
  assert not isinstance(raised.value, tf.errors.OpError)
  assert not os.path.exists(staged)
  assert checkpointing.latest_readable(str(tmp_path)) == second
