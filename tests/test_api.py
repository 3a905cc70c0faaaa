"""Tests for tfqa.api and the package top: train -> evaluate -> export -> load_predictor through `import tfqa` alone."""

import dataclasses
import inspect
import json
import os
import pydoc

import pytest

import tfqa
from tfqa import api
from tfqa import config
from tfqa.layout import rundir

from conftest import run_python


def _python(script, *args):
  proc = run_python(["-c", script, *args], unset=("TF_USE_LEGACY_KERAS",),
                    timeout=900)
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_tfqa_is_light_and_the_api_is_at_the_top():
  out = _python("""
import json, sys
import tfqa
light = "tensorflow" not in sys.modules
names = [tfqa.train.__name__, tfqa.evaluate.__name__,
         tfqa.load_predictor.__name__, tfqa.RunConfig.__name__,
         tfqa.TrainConfig.__name__, tfqa.ExportConfig.__name__]
after = "tensorflow" in sys.modules
# The export package is the export call too (one name, one object).
export = [callable(tfqa.export), tfqa.export is sys.modules["tfqa.export"]]
from tfqa import export as package
print(json.dumps({"light": light, "after": after, "names": names,
                  "export": export + [package is tfqa.export]}))
""")
  # Reaching the API loads its modules, still without TensorFlow.
  assert out == {"light": True, "after": False, "names": [
      "train", "evaluate", "load_predictor", "RunConfig", "TrainConfig",
      "ExportConfig"], "export": [True, True, True]}
  with pytest.raises(AttributeError, match="has no attribute 'trian'"):
    tfqa.trian  # pylint: disable=pointless-statement


def test_help_of_train_documents_every_argument_with_the_clis_defaults():
  text = pydoc.render_doc(tfqa.train, renderer=pydoc.plaintext)
  signature = inspect.signature(tfqa.train)
  for name, param in signature.parameters.items():
    assert f"{name}:" in text or f"{name} (default" in text, name
  for section, cls in config.SECTION_TYPES.items():
    for field in dataclasses.fields(cls):
      assert signature.parameters[field.name].default == field.default
      assert f"{field.name} (default {field.default!r}): " in text
  for name in ("run_config", "model_dir", "callbacks", "verbose",
               "progress_every_steps", "hooks"):
    assert f"\n      {name}: " in text, name
  for function in (tfqa.evaluate, api.export, tfqa.load_predictor):
    doc = inspect.getdoc(function)
    for name in inspect.signature(function).parameters:
      assert f"{name}:" in doc or f"**{name}:" in doc, (function, name)


def test_settings_make_the_run_config_as_the_flags_do(tmp_path):
  run_config = api.run_config_for(str(tmp_path), model="minilm-l6",
                                  train_file="t.json", num_train_epochs=1)
  assert run_config == config.RunConfig(
      model=config.ModelConfig(model="minilm-l6"),
      data=config.DataConfig(train_file="t.json"),
      train=config.TrainConfig(num_train_epochs=1))
  # A RunConfig with settings replacing its fields.
  assert api.run_config_for(str(tmp_path), run_config, seed=3).train == (
      config.TrainConfig(num_train_epochs=1, seed=3))
  # A run directory's saved config (a resume), settings on top.
  rundir.reconcile(str(tmp_path), run_config, write=True, has_progress=False)
  assert api.run_config_for(str(tmp_path), num_train_epochs=2) == (
      dataclasses.replace(run_config,
                          train=config.TrainConfig(num_train_epochs=2)))


def test_wrong_settings_are_refused_by_name(tmp_path):
  with pytest.raises(ValueError, match=(
      r"Invalid argument\(s\) \['num_epochs'\]. Expected settings of "
      r"tfqa.RunConfig's sections .*'num_train_epochs'")):
    tfqa.train(model_dir=str(tmp_path / "run"), model="minilm-l6",
               train_file="t.json", num_epochs=3)
  with pytest.raises(ValueError, match=(
      r"holds no earlier run to resume: pass `model` \(e.g. "
      r"model='minilm-l6'\) or `bert_config_file`")):
    tfqa.train(model_dir=str(tmp_path / "new"), train_file="t.json")
  assert not os.path.exists(tmp_path / "run")
  assert not os.path.exists(tmp_path / "new")


def test_epochs_beside_a_time_budget_are_refused_new_or_resumed(tmp_path):
  expected = (
      "Invalid value for argument `num_train_epochs`. Received: "
      "num_train_epochs=3. Expected no `num_train_epochs` in a run with "
      "time_budget='1h', which chooses the epochs when the run starts (and "
      "keeps them on resume). Cap the steps with `max_steps`, or give a new "
      "run another budget.")
  with pytest.raises(ValueError) as raised:
    api.run_config_for(str(tmp_path), model="minilm-l6", train_file="t.json",
                       time_budget="1h", num_train_epochs=3)
  assert str(raised.value) == expected
  budgeted = api.run_config_for(str(tmp_path), model="minilm-l6",
                                train_file="t.json", time_budget="1h")
  rundir.reconcile(str(tmp_path), budgeted, write=True, has_progress=False)
  with pytest.raises(ValueError) as raised:
    api.run_config_for(str(tmp_path), num_train_epochs=3)
  assert str(raised.value) == expected
  # Resuming with the same budget, or with nothing, is fine.
  assert api.run_config_for(str(tmp_path), time_budget="1h") == budgeted
  assert api.run_config_for(str(tmp_path)) == budgeted


def test_predictor_refuses_a_question_without_its_context():
  class Echo:
    def answer(self, questions, contexts):
      return [q + "|" + c for q, c in zip(questions, contexts)]

  predictor = api.Predictor(Echo())
  assert predictor("q", "c") == "q|c"
  assert predictor(["a", "b"], ("c", "d")) == ["a|c", "b|d"]
  with pytest.raises(ValueError, match=(
      "Expected a question and a context, or two lists of them. Received: "
      "str and list")):
    predictor("q", ["c"])


_END_TO_END = """
import json, os, sys
import tfqa

files, root = json.loads(sys.argv[1]), sys.argv[2]
run, exported = os.path.join(root, "run"), os.path.join(root, "export")
trained = tfqa.train(
    model_dir=run, bert_config_file=files["bert_config"],
    vocab_file=files["vocab"], do_lower_case=True,
    train_file=files["train_v2"], eval_file=files["train_v2"],
    version_2_with_negative=True, max_seq_length=32, doc_stride=8,
    max_query_length=12, train_batch_size=4, num_train_epochs=1,
    learning_rate=3e-3, seed=7, deterministic=True, verbose=0)
evaluated = tfqa.evaluate(run)
export = tfqa.export(run, exported)
paragraph = json.load(open(files["train_v2"]))["data"][0]["paragraphs"][0]
question, context = paragraph["qas"][0]["question"], paragraph["context"]
from_export = tfqa.load_predictor(exported)
from_run = tfqa.load_predictor(run)
one = from_export(question, context)
both = from_export([question, question], [context, context])
print(json.dumps({
    "step": trained.global_step, "train_f1": trained.metrics["f1"],
    "eval_f1": evaluated.metrics["f1"],
    "eval_dir": os.path.relpath(evaluated.output_dir, run),
    "version_dir": os.path.relpath(export.saved_model_dir, exported),
    "one": [one.text, one.start_char, one.end_char],
    "both": [[a.text, a.start_char] for a in both],
    "run": from_run(question, context).text}))
"""


@pytest.mark.slow
def test_train_evaluate_export_and_answer_through_the_api(tiny_files,
                                                         tmp_path):
  out = _python(_END_TO_END, json.dumps(tiny_files), str(tmp_path))
  assert out["step"] == 4
  # The same checkpoint on the same file: the same F1 as training's.
  assert out["eval_f1"] == out["train_f1"]
  assert out["eval_dir"] == os.path.join("eval", "ckpt-4")
  assert out["version_dir"] == os.path.join("saved_model", "tfqa", "1")
  assert out["both"] == [out["one"][:2], out["one"][:2]]
  # The export answers as the run's checkpoint does.
  assert out["run"] == out["one"][0]


_HUB_NAME_LOOKED_UP_ONCE = """
import json, os, sys
import huggingface_hub
import tfqa
from tfqa.cli import common  # Keras 2 for transformers' TF model
import transformers

files, root = json.loads(sys.argv[1]), sys.argv[2]
snapshot = os.path.join(root, "snapshot")
config = transformers.BertConfig.from_json_file(files["bert_config"])
model = transformers.TFBertForQuestionAnswering(config)
model(model.dummy_inputs)
model.save_pretrained(snapshot)
lookups = []

def snapshot_download(name, **kwargs):
  # The cache's answer for a cached hub model (no request).
  lookups.append([name, kwargs])
  return snapshot

huggingface_hub.snapshot_download = snapshot_download
trained = tfqa.train(
    model_dir=os.path.join(root, "run"), model="org/tiny-bert",
    vocab_file=files["vocab"], do_lower_case=True,
    train_file=files["train_v2"], max_seq_length=32, doc_stride=8,
    max_query_length=12, train_batch_size=4, max_steps=1, verbose=0,
    version_2_with_negative=True)
print(json.dumps({"step": trained.global_step, "lookups": lookups}))
"""


@pytest.mark.slow
def test_train_looks_a_hub_name_up_once(tiny_files, tmp_path):
  # preflight resolves the model; training takes the checked source.
  out = _python(_HUB_NAME_LOOKED_UP_ONCE, json.dumps(tiny_files),
                str(tmp_path))
  assert out == {"step": 1, "lookups": [["org/tiny-bert",
                                         {"local_files_only": True}]]}
