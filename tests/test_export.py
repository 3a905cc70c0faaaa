"""Tests for tfqa.export and tfqa_export: layout, signatures, parity, atomicity, warm-up, manifest."""

import importlib.util
import json
import os
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfqa import config
from tfqa import export
from tfqa import serving
from tfqa.data import squad
from tfqa.data import windows as features
from tfqa.inference import predictor as predictor_lib
from tfqa.inference import trained_model

from conftest import assert_one_line_error, code_block, run_command
from conftest import run_python, torch_pythons


_run = run_python


@pytest.fixture(scope="module")
def loaded(version_dir):
  return tf.saved_model.load(version_dir)


@pytest.fixture(scope="module")
def manifest(exported):
  return json.load(open(os.path.join(exported[1], "manifest.json")))


@pytest.fixture(scope="module")
def python_path(exported):
  return predictor_lib.CheckpointPredictor(exported[0])


@pytest.fixture
def export_copy(exported, tmp_path):
  """A copy of the export directory that a test may change."""
  copy = tmp_path / "export"
  shutil.copytree(exported[1], copy)
  return str(copy)


def _answer(signature, questions, contexts):
  out = signature(question=tf.constant(questions, tf.string),
                  context=tf.constant(contexts, tf.string))
  return [(a.decode("utf-8"), int(s), int(e), float(score))
          for a, s, e, score in zip(out["answer"].numpy(),
                                    out["start_char"].numpy(),
                                    out["end_char"].numpy(),
                                    out["score"].numpy())]


def _listing(directory):
  return sorted(os.listdir(directory))


def _assert_same_as_python(got, python_answers):
  for row, (answer, start, end, score) in enumerate(got):
    want = python_answers[row]
    assert (answer, start, end) == (want.text, want.start_char,
                                     want.end_char), f"row {row}"
    np.testing.assert_allclose(score, want.score, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_layout(exported):
  _, export_dir = exported
  assert _listing(export_dir) == [".tfqa-export", "manifest.json",
                                  "pretrained", "saved_model"]
  assert _listing(os.path.join(export_dir, "saved_model", "tfqa")) == ["1"]
  version = os.path.join(export_dir, "saved_model", "tfqa", "1")
  assert _listing(version) == ["assets", "assets.extra", "fingerprint.pb",
                               "saved_model.pb", "variables"]
  assert _listing(os.path.join(version, "assets")) == ["vocab.txt"]
  assert {"model.safetensors", "tf_model.h5", "config.json", "vocab.txt",
          "tokenizer.json", "README.md"} <= set(_listing(
              os.path.join(export_dir, "pretrained")))


@pytest.mark.slow
def test_signature_specs_of_reloaded_saved_model(loaded):
  def spec(signature):
    inputs = {name: (s.dtype, s.shape.as_list()) for name, s in
              signature.structured_input_signature[1].items()}
    outputs = {name: (s.dtype, s.shape.as_list()) for name, s in
               signature.structured_outputs.items()}
    return inputs, outputs

  assert sorted(loaded.signatures) == ["predict_logits", "serving_default"]
  assert spec(loaded.signatures["serving_default"]) == (
      {"question": (tf.string, [None]), "context": (tf.string, [None])},
      {"answer": (tf.string, [None]), "score": (tf.float32, [None]),
       "start_char": (tf.int32, [None]), "end_char": (tf.int32, [None])})
  assert spec(loaded.signatures["predict_logits"]) == (
      {name: (tf.int32, [None, None]) for name in
       ("input_ids", "attention_mask", "token_type_ids")},
      {"start_logits": (tf.float32, [None, None]),
       "end_logits": (tf.float32, [None, None])})


@pytest.mark.slow
def test_verification_passed_and_is_in_the_manifest(manifest, exported):
  verification = manifest["verification"]
  assert verification["passed"] is True
  assert verification["probe_questions"] == 11
  assert verification["probe_windows"] >= 11
  diffs = verification["logits_max_abs_diff"]
  pairs = {"checkpoint_vs_saved_model", "checkpoint_vs_pretrained",
           "saved_model_vs_pretrained"}
  if importlib.util.find_spec("torch") is None:
    assert verification["torch"] == "not installed"
  else:  # test_pytorch_reload_of_the_export_matches_the_checkpoint
    pairs |= {f"{model}_vs_pytorch" for model in ("checkpoint",
                                                  "saved_model",
                                                  "pretrained")}
  assert set(diffs) == pairs
  assert all(0 <= diff <= 1e-4 for diff in diffs.values()), diffs
  # Checked without torch: every tensor equals its TF variable.
  assert verification["safetensors"] == {
      "tensors": 5 + 16 + 2, "max_abs_diff": 0.0, "problems": []}
  assert verification["answer_agreement"] == 1.0
  assert verification["disagreements"] == []


@pytest.fixture
def torch_module():
  """torch, or a skip; a failure under CI on a Python `make test` gives it.

  Listed before the export fixtures, so a skip builds no export.
  """
  if importlib.util.find_spec("torch") is None:
    version = "%d.%d" % sys.version_info[:2]
    reason = ("needs the torch extra (`make test` installs it on Python "
              f"{' '.join(torch_pythons())}; this is {version})")
    if os.environ.get("CI") == "true" and version in torch_pythons():
      pytest.fail(reason)
    pytest.skip(reason)
  import torch  # pylint: disable=import-outside-toplevel
  return torch


@pytest.mark.slow
def test_pytorch_reload_of_the_export_matches_the_checkpoint(torch_module,
                                                            manifest):
  del torch_module
  verification = manifest["verification"]
  assert verification["torch"] == (
      "checked: BertForQuestionAnswering.from_pretrained (model.safetensors)")
  diffs = verification["logits_max_abs_diff"]
  assert sorted(diffs) == [
      "checkpoint_vs_pretrained", "checkpoint_vs_pytorch",
      "checkpoint_vs_saved_model", "pretrained_vs_pytorch",
      "saved_model_vs_pretrained", "saved_model_vs_pytorch"]
  tolerance = config.ExportConfig().logits_tolerance
  assert all(0 <= diff <= tolerance for diff in diffs.values())
  assert verification["passed"] is True


@pytest.mark.slow
def test_docs_pytorch_loading_gives_the_tensorflow_logits(torch_module,
                                                          exported):
  # The loading code of docs/SERVING.md: PyTorch reads model.safetensors;
  # TensorFlow (transformers 4.57) reads tf_model.h5.
  torch = torch_module
  import transformers  # pylint: disable=import-outside-toplevel
  pretrained = os.path.join(exported[1], "pretrained")
  model = transformers.BertForQuestionAnswering.from_pretrained(pretrained)
  model.eval()
  tokenizer = transformers.AutoTokenizer.from_pretrained(pretrained)
  inputs = tokenizer("who built the town ?",
                     "bread was built in the town of the river .")
  reference = transformers.TFBertForQuestionAnswering.from_pretrained(
      pretrained, use_safetensors=False)(
          **{k: tf.constant([v]) for k, v in inputs.items()})
  with torch.no_grad():
    got = model(**{k: torch.tensor([v]) for k, v in inputs.items()})
  assert {p.device.type for p in model.parameters()} == {"cpu"}
  for name in ("start_logits", "end_logits"):
    np.testing.assert_allclose(getattr(got, name).numpy(),
                               getattr(reference, name).numpy(),
                               atol=config.ExportConfig().logits_tolerance,
                               rtol=0)


def _tiny_tf_bert():
  import transformers  # pylint: disable=import-outside-toplevel
  model = transformers.TFBertForQuestionAnswering(transformers.BertConfig(
      vocab_size=30, hidden_size=8, num_hidden_layers=1,
      num_attention_heads=2, intermediate_size=16))
  model(model.dummy_inputs)
  return model


def test_safetensors_are_compared_with_the_tf_variables_without_torch(
    tmp_path):
  from safetensors import numpy as safetensors_numpy  # pylint: disable=import-outside-toplevel
  model = _tiny_tf_bert()
  path = export.write_safetensors(model, str(tmp_path))
  assert export.compare_safetensors(model, path) == {
      "tensors": 23, "max_abs_diff": 0.0, "problems": []}
  tensors = safetensors_numpy.load_file(path)
  name = "bert.encoder.layer.0.attention.self.query.weight"
  tensors[name] = tensors[name] + np.float32(0.5)
  tensors["qa_outputs.weight"] = tensors["qa_outputs.weight"].T.copy()
  tensors["bert.pooler.dense.bias"] = np.zeros(8, np.float32)
  del tensors["qa_outputs.bias"]
  safetensors_numpy.save_file(tensors, path)
  compared = export.compare_safetensors(model, path)
  assert compared["problems"] == [
      "qa_outputs.bias is missing",
      "bert.pooler.dense.bias is not a weight of the model",
      f"{name} differs from the TF variable by up to 0.5",
      "qa_outputs.weight is float32[8, 2], expected float32[2, 8]"]
  assert compared["max_abs_diff"] == 0.5
  (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
  [problem] = export.compare_safetensors(model, path)["problems"]
  assert problem.startswith("cannot be read: SafetensorError: ")


def test_tf_loader_of_transformers_4_57_fails_on_pytorch_safetensors(
    tmp_path):
  # Why every TF load of pretrained/ passes use_safetensors=False: 4.57's
  # TF from_pretrained prefers model.safetensors to tf_model.h5, then
  # cannot read PyTorch's. When this fails, upstream reads them and the
  # keyword can go (docs/SERVING.md, the model card, modeling).
  import transformers  # pylint: disable=import-outside-toplevel
  model = _tiny_tf_bert()
  model.save_pretrained(str(tmp_path))
  export.write_safetensors(model, str(tmp_path))
  with pytest.raises(TypeError, match="'builtins.safe_open' object is not "
                                      "iterable"):
    transformers.TFBertForQuestionAnswering.from_pretrained(str(tmp_path))
  transformers.TFBertForQuestionAnswering.from_pretrained(
      str(tmp_path), use_safetensors=False)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")
def test_upstream_from_tf_still_leaves_pytorch_weights_on_meta(torch_module,
                                                               exported):
  # Why exports hold model.safetensors for PyTorch and docs/SERVING.md does
  # not suggest from_tf=True: transformers 4.57.6's
  # from_pretrained(from_tf=True) with torch 2.13 copies no weight. When
  # this fails, the bug is fixed upstream.
  del torch_module
  import transformers  # pylint: disable=import-outside-toplevel
  model = transformers.BertForQuestionAnswering.from_pretrained(
      os.path.join(exported[1], "pretrained"), from_tf=True)
  assert {p.device.type for p in model.parameters()} == {"meta"}


@pytest.mark.slow
def test_manifest_contents(manifest, exported):
  model_dir, export_dir = exported
  assert manifest["model_name"] == "tfqa" and manifest["version"] == 1
  assert manifest["paths"]["saved_model"] == "saved_model/tfqa/1"
  for kind in ("saved_model", "pretrained"):
    directory = os.path.join(export_dir, *manifest["paths"][kind].split("/"))
    assert manifest["sha256"][kind] == export.file_digests(directory)
  assert "assets.extra/tf_serving_warmup_requests" in manifest["sha256"][
      "saved_model"]
  assert {"model.safetensors", "tf_model.h5"} <= set(
      manifest["sha256"]["pretrained"])
  assert manifest["signatures"]["serving_default"]["inputs"] == {
      "context": {"dtype": "string", "shape": [None]},
      "question": {"dtype": "string", "shape": [None]}}
  assert manifest["signatures"]["predict_logits"]["outputs"][
      "start_logits"] == {"dtype": "float32", "shape": [None, None]}
  assert manifest["custom_ops"] == ["NormalizeUTF8", "RegexSplitWithOffsets",
                                    "WordpieceTokenizeWithOffsets"]
  assert manifest["serving"]["oldest_tf_serving"].startswith(
      ".".join(tf.__version__.split(".")[:2]))
  assert "2.2.0" in manifest["serving"]["note"]
  assert manifest["serving"]["max_windows_per_batch"] == (
      config.ExportConfig().max_windows_per_batch)
  assert set(manifest["versions"]) >= {"tfqa", "tensorflow",
                                       "tensorflow_text", "transformers"}
  assert manifest["checkpoint"] == trained_model.load(model_dir).checkpoint
  assert manifest["run_config"]["features"]["max_seq_length"] == 32
  # A v2.0 run: the run's own no-answer threshold, recorded.
  assert manifest["null_score_diff_threshold"] == {
      "value": 0.0, "source": "run_config", "run_value": 0.0}


@pytest.mark.slow
def test_long_context_and_empty_rows(loaded, python_path, exported):
  long_context = " ".join(
      ["the river town is where the keeper was in 1901 ."] * 6 +
      ["paris is the capital city of france ."] +
      ["bread was built in the town of the river ."] * 3)
  questions = ["what is the capital of france ?", "", "who built the town ?",
               "", "what was built ?"]
  contexts = [long_context, "paris is the capital city of france .", "", "",
              long_context]
  trained = python_path.trained
  windows = features.build_features(
      [squad.SquadExample("x", "", questions[0], long_context, (),
                                      ())],
      trained.tokenizer, trained.run_config.features)
  assert len(windows) >= 5
  got = _answer(loaded.signatures["serving_default"], questions, contexts)
  for row in (1, 2, 3):  # No question or no context: no answer.
    assert got[row][:3] == ("", -1, -1)
  _assert_same_as_python([got[0], got[4]],
                         python_path.answer([questions[0], questions[4]],
                                            [long_context, long_context]))


UNICODE_ROWS = (
    ("who built the town ?",
     "thé lïghthouse kéeper 東京 built the town in 1887 😀 ."),
    ("when was the town built ?",
     "🍕🍕 the lighthouse keeper built the town in 1887 . 東京は日本の首都です"),
    ("what is the capital of france ?",
     "Zoë says PARÍS is the capital city of France 🇫🇷 ."),
    ("where was the bread ?",
     "the river town — « the city of paris » … 한국어 was where the bread "
     "was ."),
)


@pytest.mark.slow
def test_unicode_contexts_offsets_index_the_string(loaded, python_path,
                                                  version_dir):
  questions = [q for q, _ in UNICODE_ROWS]
  contexts = [c for _, c in UNICODE_ROWS]
  got = _answer(loaded.signatures["serving_default"], questions, contexts)
  for (answer, start, end, _), context in zip(got, contexts):
    if start >= 0:
      assert context[start:end] == answer
  _assert_same_as_python(got, python_path.answer(questions, contexts))
  # The tiny v2.0 model may abstain everywhere; the same exported logits
  # decoded without the null option always give spans to check.
  logits = loaded.signatures["predict_logits"]
  spans_only = serving.QAServingModule(
      logits_fn=lambda ids, mask, types: tuple(
          logits(input_ids=ids, attention_mask=mask,
                 token_type_ids=types)[k] for k in ("start_logits",
                                                    "end_logits")),
      vocab_file=os.path.join(version_dir, "assets", "vocab.txt"),
      do_lower_case=True,
      feature_config=config.FeatureConfig(max_seq_length=32, doc_stride=8,
                                          max_query_length=12),
      decode_config=config.DecodeConfig())
  answered = 0
  for (answer, start, end, _), context in zip(
      _answer(spans_only.answer, questions, contexts), contexts):
    if context.strip():
      answered += 1
      assert 0 <= start < end <= len(context)
      assert context[start:end] == answer
  assert answered >= 2


@pytest.mark.slow
def test_warmup_records_parse_and_run(version_dir, loaded):
  from tensorflow_serving.apis import prediction_log_pb2

  path = os.path.join(version_dir, "assets.extra",
                      "tf_serving_warmup_requests")
  records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
  assert len(records) == config.ExportConfig().num_warmup_requests
  for record in records:
    log = prediction_log_pb2.PredictionLog.FromString(record)
    request = log.predict_log.request
    assert request.model_spec.name == "tfqa"
    assert request.model_spec.signature_name == "serving_default"
    inputs = {name: tf.make_ndarray(proto)
              for name, proto in request.inputs.items()}
    assert sorted(inputs) == ["context", "question"]
    assert inputs["question"].shape == (1,) and inputs["question"][0]
    out = loaded.signatures[request.model_spec.signature_name](
        **{name: tf.constant(value) for name, value in inputs.items()})
    assert out["answer"].shape == (1,)


_FRESH_PROCESS_SCRIPT = """
import json, sys
import tensorflow as tf
import tensorflow_text  # Registers the tokenizer ops.
loaded = tf.saved_model.load(sys.argv[1])
out = loaded.signatures["serving_default"](
    question=tf.constant(["what is the capital of france ?"]),
    context=tf.constant(["paris is the capital city of france ."]))
logits = loaded.signatures["predict_logits"](
    input_ids=tf.constant([[2, 7, 3, 8, 3]]),
    attention_mask=tf.ones([1, 5], tf.int32),
    token_type_ids=tf.constant([[0, 0, 0, 1, 1]]))
assert "tfqa" not in sys.modules and "transformers" not in sys.modules
print(json.dumps({"answer": out["answer"].numpy()[0].decode("utf-8"),
                  "start_char": int(out["start_char"].numpy()[0]),
                  "logits_shape": logits["start_logits"].shape.as_list()}))
"""


@pytest.mark.slow
def test_fresh_process_with_only_tensorflow_text_answers(version_dir,
                                                         loaded, tmp_path):
  proc = _run(["-c", _FRESH_PROCESS_SCRIPT, version_dir], cwd=tmp_path,
              env={"PYTHONPATH": ""})
  got = json.loads(proc.stdout.strip().splitlines()[-1])
  want = _answer(loaded.signatures["serving_default"],
                 ["what is the capital of france ?"],
                 ["paris is the capital city of france ."])[0]
  assert (got["answer"], got["start_char"]) == want[:2]
  assert got["logits_shape"] == [1, 5]


@pytest.mark.slow
def test_saved_model_cli_lists_both_signatures(version_dir):
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  if not os.path.exists(cli):
    pytest.skip(f"{cli} is not installed")
  proc = run_command([cli, "show", "--all", "--dir", version_dir],
                     timeout=300)
  assert "signature_def['serving_default']" in proc.stdout
  assert "signature_def['predict_logits']" in proc.stdout
  assert "inputs['question'] tensor_info" in proc.stdout
  assert "WordpieceTokenizeWithOffsets" in proc.stdout


_PIPELINE_SCRIPT = """
import json, sys
import transformers
qa = transformers.pipeline("question-answering", model=sys.argv[1],
                           tokenizer=sys.argv[1], framework="tf", dtype=None,
                           model_kwargs={"use_safetensors": False})
context = "paris is the capital city of france ."
out = qa(question="what is the capital of france ?", context=context)
assert out["answer"] == context[out["start"]:out["end"]], out
print(json.dumps(out))
"""


@pytest.mark.slow
def test_pretrained_dir_works_with_an_offline_pipeline(exported, tmp_path):
  pretrained = os.path.join(exported[1], "pretrained")
  proc = _run(["-c", _PIPELINE_SCRIPT, pretrained], cwd=tmp_path,
              env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["answer"] and 0 <= out["score"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("heading", ["TF_USAGE_HEADING",
                                     "SAVED_MODEL_USAGE_HEADING"])
def test_model_card_tensorflow_snippets_run_as_written(exported, heading):
  # The transformers 5 snippet runs in test_export_transformers5.py.
  from tfqa.export import card  # pylint: disable=import-outside-toplevel
  export_dir = exported[1]
  with open(os.path.join(export_dir, "pretrained", "README.md"),
            encoding="utf-8") as f:
    snippet = code_block(f.read(), getattr(card, heading))
  proc = _run(["-c", snippet], cwd=export_dir,
              env={"HF_HUB_OFFLINE": "1", "TF_USE_LEGACY_KERAS": "1"})
  assert proc.stdout.strip(), proc.stderr[-2000:]


@pytest.mark.slow
def test_pretrained_config_and_model_card(exported):
  model_dir, export_dir = exported
  pretrained = os.path.join(export_dir, "pretrained")
  config = json.load(open(os.path.join(pretrained, "config.json")))
  architecture = json.load(open(os.path.join(model_dir, "bert_config.json")))
  # The run's dropout, not the serving model's zeros.
  assert config["hidden_dropout_prob"] == architecture[
      "hidden_dropout_prob"] == 0.1
  card = open(os.path.join(pretrained, "README.md"), encoding="utf-8").read()
  run_config = json.load(open(os.path.join(model_dir, "run_config.json")))
  assert config["architectures"] == ["BertForQuestionAnswering"]
  assert config["model_type"] == "bert"
  # No local path (the run's, the data's, the export's).
  for path in (model_dir, export_dir,
               os.path.dirname(run_config["data"]["train_file"])):
    assert path not in card, path
  for text in ("## Training data",
               f"`{os.path.basename(run_config['data']['train_file'])}`",
               "| train.learning_rate | 0.003 |", "## Evaluation", "| f1 |",
               "| HasAns_exact |", "## No-answer threshold",
               "## Export verification",
               f"tfqa {__import__('tfqa').__version__}",
               "saved_model/tfqa/1"):
    assert text in card, text


@pytest.mark.slow
def test_existing_version_is_refused(exported):
  model_dir, export_dir = exported
  with pytest.raises(ValueError, match=r"saved_model/tfqa/1 already exists "
                     r"and is never overwritten.*--overwrite.*leave the "
                     r"version unset to write version 2"):
    export.export_model(model_dir=model_dir, export_dir=export_dir, version=1)


def _no_staging_dirs(export_dir):
  for directory in (export_dir, os.path.join(export_dir, "saved_model",
                                             "tfqa")):
    hidden = [name for name in os.listdir(directory)
              if name.startswith(".") and name != ".tfqa-export"]
    assert hidden == [], directory


@pytest.mark.slow
def test_failed_export_leaves_nothing_then_next_version_is_chosen(
    exported, export_copy):
  model_dir, _ = exported
  before = open(os.path.join(export_copy, "manifest.json")).read()
  pretrained = export.file_digests(os.path.join(export_copy, "pretrained"))
  stages = []

  def fail(stage, path):
    stages.append(stage)
    if stage == "saved_model":
      assert os.path.isfile(os.path.join(path, "saved_model.pb"))
      raise RuntimeError("disk full (forced)")

  # After the SavedModel was written into the staging dir.
  with pytest.raises(RuntimeError, match="forced"):
    export.export_model(model_dir=model_dir, export_dir=export_copy,
                        overwrite=True,
                        hooks=export.ExportHooks(after_stage=fail))
  assert stages == ["saved_model"]
  assert _listing(os.path.join(export_copy, "saved_model", "tfqa")) == ["1"]
  _no_staging_dirs(export_copy)
  assert open(os.path.join(export_copy, "manifest.json")).read() == before
  assert export.file_digests(os.path.join(export_copy,
                                          "pretrained")) == pretrained

  # The CLI, in a fresh process, takes the next free version: 2.
  proc = _run(["-m", "tfqa.cli.export", f"--model_dir={model_dir}",
               f"--export_dir={export_copy}"])
  result = json.loads(proc.stdout)
  assert result["saved_model_dir"] == os.path.join(export_copy, "saved_model",
                                                   "tfqa", "2")
  assert result["verification"]["passed"] is True
  assert _listing(os.path.join(export_copy, "saved_model", "tfqa")) == [
      "1", "2"]
  _no_staging_dirs(export_copy)
  manifest = json.load(open(os.path.join(export_copy, "manifest.json")))
  assert manifest["version"] == 2
  assert manifest["verification"] == result["verification"]


@pytest.mark.slow
def test_failed_verification_publishes_nothing(exported, export_copy):
  model_dir, _ = exported
  before = open(os.path.join(export_copy, "manifest.json")).read()

  def failing_parity(trained, **kwargs):
    # The real check, with a tolerance nothing meets and a serving_default
    # that answers wrong.
    return export.check_parity(
        trained, **{**kwargs, "logits_tolerance": -1.0,
                    "graph_answers_fn": lambda signature, examples: [
                        "wrong"] * len(examples)})

  with pytest.raises(export.ExportVerificationError,
                     match=r"checkpoint_vs_saved_model: max \|diff\| .* > -1"
                           r".*agrees with the Python answers on 0\.0% of 11 "
                           r"questions.*p0q0: graph 'wrong' vs python"
                           r".*Nothing was published") as error:
    export.export_model(model_dir=model_dir, export_dir=export_copy,
                        overwrite=True,
                        hooks=export.ExportHooks(check_parity=failing_parity))
  assert isinstance(error.value, ValueError)
  assert len(error.value.verification["disagreements"]) == 11
  assert error.value.verification["passed"] is False
  assert _listing(os.path.join(export_copy, "saved_model", "tfqa")) == ["1"]
  _no_staging_dirs(export_copy)
  assert open(os.path.join(export_copy, "manifest.json")).read() == before


@pytest.mark.slow
def test_overwrite_replaces_a_version_whole(exported, export_copy):
  model_dir, _ = exported
  version = os.path.join(export_copy, "saved_model", "tfqa", "1")
  stray = os.path.join(version, "stray.txt")
  open(stray, "w").write("from the old version")
  result = export.export_model(model_dir=model_dir, export_dir=export_copy,
                               version=1, overwrite=True, verify=False,
                               model_name="tfqa")
  assert result.saved_model_dir == version
  assert result.verification == {"skipped": True}
  assert not os.path.exists(stray)
  assert _listing(os.path.join(export_copy, "saved_model", "tfqa")) == ["1"]
  _no_staging_dirs(export_copy)
  manifest = json.load(open(result.manifest_path))
  assert manifest["verification"] == {"skipped": True}
  assert manifest["sha256"]["saved_model"] == export.file_digests(version)
  card = open(os.path.join(export_copy, "pretrained", "README.md")).read()
  assert "Not verified" in card


@pytest.mark.slow
def test_cli_unwritable_export_dir_is_a_one_line_error(exported, tmp_path):
  model_dir, _ = exported
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  proc = _run(["-m", "tfqa.cli.export", f"--model_dir={model_dir}",
               f"--export_dir={blocker}/export", "--noverify"],
              expect_fail=True)
  last = proc.stderr.strip().splitlines()[-1]
  # Refused before anything is loaded or written.
  assert last == (f"tfqa_export: error: --export_dir={blocker}/export cannot "
                  f"be created: {blocker} is a file, not a directory; "
                  f"expected an export directory (created if absent).")
  assert "Traceback" not in proc.stderr
  assert blocker.read_text() == "not a directory"


@pytest.mark.slow
def test_cli_refuses_to_replace_what_it_did_not_write(exported, tmp_path):
  model_dir, _ = exported
  project = tmp_path / "project"
  (project / "onnx").mkdir(parents=True)
  (project / "onnx" / "my_model.onnx").write_text("mine")
  (project / "notes.txt").write_text("mine")
  proc = _run(["-m", "tfqa.cli.export", f"--model_dir={model_dir}",
               "--export_dir=.", "--noverify"], expect_fail=True, cwd=project)
  assert_one_line_error(proc, (
      "tfqa_export: error: --export_dir=. holds onnx/, which an export "
      "replaces, but no export wrote there (no .tfqa-export); expected a new "
      "or empty directory, an earlier export, or one without manifest.json, "
      "pretrained/, onnx/, tflite/. Nothing was written."))
  assert sorted(os.listdir(project)) == ["notes.txt", "onnx"]
  assert os.listdir(project / "onnx") == ["my_model.onnx"]
  # Among other files, an export directory of its own is fine, and a
  # second export there replaces its own pretrained/.
  for _ in range(2):
    _run(["-m", "tfqa.cli.export", f"--model_dir={model_dir}",
          "--export_dir=exports", "--noverify"], cwd=project)
  assert sorted(os.listdir(project / "exports")) == [
      ".tfqa-export", "manifest.json", "pretrained", "saved_model"]
  assert sorted(os.listdir(project / "exports" / "saved_model" / "tfqa")) == [
      "1", "2"]


@pytest.mark.slow
def test_cli_refuses_an_existing_version(exported):
  model_dir, export_dir = exported
  proc = _run(["-m", "tfqa.cli.export", f"--model_dir={model_dir}",
               f"--export_dir={export_dir}", "--version=1"], expect_fail=True)
  assert "tfqa_export: error: " in proc.stderr
  assert f"{export_dir}/saved_model/tfqa/1 already exists" in proc.stderr


@pytest.mark.slow
def test_cli_usage_errors_and_help():
  proc = _run(["-m", "tfqa.cli.export", "--model_dir=x"], expect_fail=True)
  assert "--export_dir is required" in proc.stderr
  proc = _run(["-m", "tfqa.cli.export", "--help"])
  groups = [line for line in proc.stdout.splitlines()
            if line and not line.startswith(" ") and line.endswith(":")]
  assert groups == ["Input:", "Output:", "Verification:"]
  assert "--model_name (default: 'tfqa')" in proc.stdout


@pytest.mark.parametrize("kwargs,match", [
    ({"model_name": "a/b"}, r"model_name='a/b'. Expected a TF Serving model "
                            r"name"),
    ({"model_name": "12"}, r"model_name='12'.*not all digits"),
    ({"version": 0}, r"version=0. Expected a positive integer"),
    ({"version": True}, r"version=True. Expected a positive integer"),
    ({"overwrite": "yes"}, r"overwrite='yes'. Expected a bool"),
    ({"verify": None}, r"verify=None. Expected a bool"),
])
def test_invalid_arguments_are_rejected(tmp_path, kwargs, match):
  with pytest.raises(ValueError, match=match):
    export.export_model(model_dir=str(tmp_path), export_dir=str(tmp_path),
                        **kwargs)


def test_a_directory_without_a_run_is_rejected(tmp_path):
  (tmp_path / "nothing").mkdir()
  with pytest.raises(ValueError, match=(
      rf"^model_dir={tmp_path}/nothing holds no run_config\.json; expected "
      rf"a tfqa_train --model_dir\.$")):
    export.export_model(model_dir=str(tmp_path / "nothing"),
                        export_dir=str(tmp_path / "export"))
  # Nothing is left behind by a refused export.
  assert not os.path.exists(tmp_path / "export")


def test_probe_examples_default_to_the_bundled_sample():
  from tfqa import config
  run_config = config.RunConfig(model=config.ModelConfig(model="m"),
                                data=config.DataConfig(train_file="t.json"))
  source, examples = export.probe_examples(None, run_config)
  assert source.endswith("sample_squad.json")
  assert len(examples) == config.ExportConfig().max_probe_questions
  with pytest.raises(FileNotFoundError, match="SQuAD file not found"):
    export.probe_examples("/no/such/probe.json", run_config)


_QUESTIONS = ["what is the capital of france ?", "who built the town ?",
              "what is the river ?", "when was the town built ?"]
_CONTEXTS = ["paris is the capital city of france .",
             "the lighthouse keeper built the town in 1887 .",
             "the lighthouse keeper built the town in 1887 .",
             "the lighthouse keeper built the town in 1887 ."]


@pytest.mark.slow
@pytest.mark.parametrize("threshold,answered", [(-1e6, 0), (1e6, 4)])
def test_threshold_at_export_decides_served_answers(exported, tmp_path,
                                                    threshold, answered):
  model_dir, _ = exported
  export_dir = tmp_path / "export"
  result = export.export_model(model_dir=model_dir,
                               export_dir=str(export_dir),
                               no_answer_threshold=threshold)
  # A hugely negative threshold: the null always wins (no answers); a huge
  # one: it never does. The verification agreed with the Python path.
  assert result.verification["passed"]
  signature = tf.saved_model.load(result.saved_model_dir).signatures[
      "serving_default"]
  got = _answer(signature, _QUESTIONS, _CONTEXTS)
  assert sum(bool(answer) for answer, *_ in got) == answered
  if not answered:
    assert {(start, end) for _, start, end, _ in got} == {(-1, -1)}
  manifest = json.load(open(export_dir / "manifest.json"))
  assert manifest["null_score_diff_threshold"] == {
      "value": threshold, "source": "export argument", "run_value": 0.0}
  assert manifest["run_config"]["decode"][
      "null_score_diff_threshold"] == threshold
  card = (export_dir / "pretrained" / "README.md").read_text()
  assert (f"beats the best span's score by more than **{threshold:.6g}** "
          f"(decode.null_score_diff_threshold; source: export argument). "
          f"The run, and its evaluation above, used 0.") in card


@pytest.mark.slow
def test_cli_best_threshold_serves_the_eval_best_f1(exported, tiny_files,
                                                    tmp_path):
  model_dir, _ = exported
  export_dir = tmp_path / "export"
  _run(["-m", "tfqa.cli.export", f"--model_dir={model_dir}",
        f"--export_dir={export_dir}", "--null_score_diff_threshold=best"])
  results = json.load(open(os.path.join(model_dir, "eval",
                                        "eval_results.json")))
  record = json.load(open(export_dir / "manifest.json"))[
      "null_score_diff_threshold"]
  assert record["source"].startswith(
      f"best_f1_thresh {results['best_f1_thresh']:.6g} of {model_dir}/eval/")
  assert record["value"] > results["best_f1_thresh"]
  # The served answers to the eval questions score the eval's best F1.
  predictor = predictor_lib.load_predictor(str(export_dir))
  predictions = {qid: a.text for qid, a in predictor_lib.predict_file(
      predictor, tiny_files["train_v2"]).items()}
  (tmp_path / "p.json").write_text(json.dumps(predictions))
  from tfqa.evaluation import scoring
  scores = scoring.score_files(tiny_files["train_v2"],
                               str(tmp_path / "p.json"))
  assert scores["f1"] == pytest.approx(results["best_f1"])


def test_export_config_defaults_and_validation():
  defaults = config.ExportConfig()
  assert (defaults.model_name, defaults.version, defaults.overwrite,
          defaults.verify, defaults.max_windows_per_batch,
          defaults.logits_tolerance, defaults.min_answer_agreement) == (
              "tfqa", None, False, True, 8, 1e-4, 0.99)
  for kwargs, match in [
      ({"logits_tolerance": -1.0}, r"Received: logits_tolerance=-1\.0\. "
                                   r"Expected a finite number >= 0"),
      ({"min_answer_agreement": 1.5}, r"min_answer_agreement=1\.5\. "
                                      r"Expected a share in \[0, 1\]"),
      ({"max_windows_per_batch": 0}, r"max_windows_per_batch=0\. Expected "
                                     r"a positive integer"),
      ({"max_probe_questions": 0}, r"max_probe_questions=0\. Expected a "
                                   r"positive integer")]:
    with pytest.raises(ValueError, match=match):
      config.ExportConfig(**kwargs)


def test_export_model_takes_config_fields_as_keywords(tmp_path):
  with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) "
                                      r"\['model_nam'\]\. Expected "
                                      r"ExportConfig fields: .*'model_name'"):
    export.export_model(model_dir=str(tmp_path), export_dir=str(tmp_path),
                        model_nam="x")
  with pytest.raises(ValueError, match=r"model_name='1'"):  # the keyword wins
    export.export_model(model_dir=str(tmp_path), export_dir=str(tmp_path),
                        config=config.ExportConfig(model_name="ok"),
                        model_name="1")
