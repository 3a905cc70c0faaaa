"""Tests for tfqa.inference.predictor and tfqa_predict: SavedModel, checkpoint and ONNX (float, int8) paths, manifest checks, output files, one-line errors."""

import json
import os
import re
import shutil

import numpy as np
import pytest

from tfqa import errors
from tfqa.inference import predictor as predictor_lib
from tfqa.layout import integrity

from conftest import needs_onnx, onnx_tiny_export, run_python, tiny_squad

_run = run_python

QUESTION = "what is the capital of france ?"
CONTEXT = "paris is the capital city of france ."


@pytest.fixture(scope="module")
def saved_model_predictor(version_dir):
  return predictor_lib.SavedModelPredictor(version_dir)


@pytest.fixture(scope="module")
def squad_file(tmp_path_factory):
  path = tmp_path_factory.mktemp("squad") / "tiny_v2.json"
  path.write_text(json.dumps(tiny_squad(True)))
  return str(path)


@pytest.fixture
def export_copy(exported, tmp_path):
  copy = tmp_path / "export"
  shutil.copytree(exported[1], copy)
  return str(copy)


@pytest.mark.slow
def test_saved_model_and_checkpoint_give_the_same_answers(
    exported, saved_model_predictor, squad_file):
  from_graph = predictor_lib.predict_file(saved_model_predictor, squad_file)
  from_checkpoint = predictor_lib.predict_file(
      predictor_lib.CheckpointPredictor(exported[0]), squad_file)
  assert len(from_graph) == 11 and from_graph.keys() == from_checkpoint.keys()
  for qid, answer in from_graph.items():
    want = from_checkpoint[qid]
    assert (answer.text, answer.start_char, answer.end_char) == (
        want.text, want.start_char, want.end_char), qid
    assert answer.score == pytest.approx(want.score, abs=1e-4)
  assert predictor_lib.CheckpointPredictor(exported[0]).answer([], []) == []


@pytest.mark.slow
def test_paths_resolve_to_the_latest_version(exported, version_dir,
                                             export_copy):
  _, export_dir = exported
  models_dir = os.path.dirname(version_dir)
  for path in (version_dir, models_dir, export_dir):
    assert predictor_lib.resolve_saved_model(path) == version_dir
  assert predictor_lib.resolve_saved_model(exported[0]) is None
  # A higher version wins; a numbered directory without saved_model.pb and
  # hidden staging directories do not count.
  copy_models = os.path.join(export_copy, "saved_model", "tfqa")
  shutil.copytree(os.path.join(copy_models, "1"),
                  os.path.join(copy_models, "4"))
  os.makedirs(os.path.join(copy_models, "9"))
  os.makedirs(os.path.join(copy_models, ".tmp-12-1"))
  assert predictor_lib.resolve_saved_model(export_copy) == os.path.join(
      copy_models, "4")


def test_resolve_errors(tmp_path):
  (tmp_path / "saved_model" / "a").mkdir(parents=True)
  (tmp_path / "saved_model" / "b").mkdir()
  with pytest.raises(ValueError, match=r"holds the models \['a', 'b'\] and "
                                       r".* has no manifest.json"):
    predictor_lib.resolve_saved_model(str(tmp_path))
  shutil.rmtree(tmp_path / "saved_model" / "b")
  with pytest.raises(ValueError, match="holds no SavedModel version"):
    predictor_lib.resolve_saved_model(str(tmp_path))


@pytest.mark.slow
def test_load_predictor_picks_the_path(exported, version_dir):
  model_dir, export_dir = exported
  predictor = predictor_lib.load_predictor(export_dir, verify_manifest=True)
  assert isinstance(predictor, predictor_lib.SavedModelPredictor)
  assert predictor.saved_model_dir == version_dir
  assert isinstance(predictor_lib.load_predictor(model_dir),
                    predictor_lib.CheckpointPredictor)
  with pytest.raises(ValueError, match="`checkpoint` applies to training "
                                       "runs"):
    predictor_lib.load_predictor(export_dir, checkpoint="ckpt-1")
  with pytest.raises(ValueError, match="`verify_manifest` checks exported "
                                       "SavedModels"):
    predictor_lib.load_predictor(model_dir, verify_manifest=True)


def test_load_predictor_rejects_other_paths(tmp_path):
  with pytest.raises(ValueError, match=(
      rf"^model={tmp_path}/missing does not exist; expected a SavedModel "
      rf"version directory, an export directory \(tfqa_export --export_dir\) "
      rf"or a tfqa_train --model_dir\.$")):
    predictor_lib.load_predictor(str(tmp_path / "missing"))
  with pytest.raises(ValueError, match="holds neither a SavedModel"):
    predictor_lib.load_predictor(str(tmp_path))


def test_options_that_do_not_apply_are_named_as_the_caller_names_them(
    exported, version_dir):
  with pytest.raises(errors.ArgumentNamingError) as caught:
    predictor_lib.load_predictor(version_dir, checkpoint="ckpt-1")
  assert str(caught.value) == (
      f"`checkpoint` applies to training runs, but {version_dir} is a "
      f"SavedModel. Drop `checkpoint`.")
  assert caught.value.worded({"checkpoint": "--checkpoint"}) == (
      f"--checkpoint applies to training runs, but {version_dir} is a "
      f"SavedModel. Drop --checkpoint.")
  with pytest.raises(errors.ArgumentNamingError) as caught:
    predictor_lib.load_predictor(exported[0], verify_manifest=True)
  assert caught.value.worded({"verify_manifest": "--verify_manifest"}) == (
      f"--verify_manifest checks exported SavedModels, but {exported[0]} is "
      f"a training run. Drop --verify_manifest or pass the export directory.")


@pytest.mark.slow
def test_verify_manifest_catches_every_change(export_copy):
  version = os.path.join(export_copy, "saved_model", "tfqa", "1")
  assert predictor_lib.check_manifest(version)["version"] == 1
  with open(os.path.join(version, "assets", "vocab.txt"), "a") as f:
    f.write("extra\n")
  os.remove(os.path.join(version, "fingerprint.pb"))
  open(os.path.join(version, "variables", "backdoor"), "w").write("x")
  with pytest.raises(integrity.ManifestMismatchError,
                     match=r"Refusing to load .*: fingerprint.pb is missing; "
                           r"assets/vocab.txt was modified \(SHA-256 .*\); "
                           r"variables/backdoor is not in the manifest"):
    predictor_lib.check_manifest(version)


@pytest.mark.slow
def test_verify_manifest_needs_the_manifest_of_this_version(export_copy):
  models = os.path.join(export_copy, "saved_model", "tfqa")
  shutil.copytree(os.path.join(models, "1"), os.path.join(models, "2"))
  with pytest.raises(integrity.ManifestMismatchError,
                     match=r"describes saved_model/tfqa/1, not .*/2"):
    predictor_lib.check_manifest(os.path.join(models, "2"))
  os.remove(os.path.join(export_copy, "manifest.json"))
  with pytest.raises(integrity.ManifestMismatchError,
                     match=r"no .*manifest.json.*or load it without verifying a manifest\.$"):
    predictor_lib.check_manifest(os.path.join(models, "1"))


@pytest.mark.slow
def test_cli_question_and_context(exported, saved_model_predictor):
  proc = _run(["-m", "tfqa.cli.predict", f"--model={exported[1]}",
               "--verify_manifest", f"--question={QUESTION}",
               f"--context={CONTEXT}"])
  want, = saved_model_predictor.answer([QUESTION], [CONTEXT])
  lines = proc.stdout.strip().splitlines()
  assert lines[0] == f"answer: {want.text or '(no answer)'}"
  assert lines[1] == f"score: {want.score:.4f}"
  assert lines[2] == "context: " + predictor_lib.mark_answer(
      CONTEXT, want.start_char, want.end_char)
  # The tiny model may abstain (v2.0): the answer is marked only if it has one.
  assert ("[[" in lines[2]) == bool(want.text)


@pytest.mark.slow
def test_cli_input_file_to_output_file(exported, saved_model_predictor,
                                       squad_file, tmp_path):
  output = tmp_path / "out" / "predictions.json"
  proc = _run(["-m", "tfqa.cli.predict", f"--model={exported[1]}",
               f"--input_file={squad_file}", f"--output_file={output}"])
  summary = json.loads(proc.stdout)
  assert summary["questions"] == 11 and summary["output_file"] == str(output)
  written = json.loads(output.read_text(encoding="utf-8"))
  want = predictor_lib.predict_file(saved_model_predictor, squad_file)
  assert written == {qid: a.text for qid, a in want.items()}
  assert os.listdir(output.parent) == ["predictions.json"]  # No temp file.


@pytest.mark.slow
def test_cli_refuses_a_modified_saved_model(export_copy):
  version = os.path.join(export_copy, "saved_model", "tfqa", "1")
  with open(os.path.join(version, "variables", "variables.index"),
            "ab") as f:
    f.write(b"\0")
  proc = _run(["-m", "tfqa.cli.predict", f"--model={export_copy}",
               "--verify_manifest", f"--question={QUESTION}",
               f"--context={CONTEXT}"], expect_fail=True)
  assert "tfqa_predict: error: Refusing to load" in proc.stderr
  assert "variables/variables.index was modified" in proc.stderr
  assert "answer:" not in proc.stdout


_NO_TRANSFORMERS_SCRIPT = """
import sys
from tfqa.inference import predictor as predictor_lib
predictor = predictor_lib.load_predictor(sys.argv[1], verify_manifest=True)
answers = predictor.answer(["what is the capital of france ?", ""],
                           ["paris is the capital city of france .", "x"])
assert answers[1] == predictor_lib.Answer("", answers[1].score, -1, -1), answers
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "transformers")
assert not loaded, loaded
print("ok")
"""


@pytest.mark.slow
def test_saved_model_path_never_imports_transformers(exported):
  proc = _run(["-c", _NO_TRANSFORMERS_SCRIPT, exported[1]])
  assert proc.stdout.strip().endswith("ok")


@pytest.mark.parametrize("args,match", [
    ([], "--model is required"),
    (["--model=m"], "Pass either --question and --context, or --input_file"),
    (["--model=m", "--question=q", "--input_file=f"],
     "Pass either --question and --context, or --input_file"),
    (["--model=m", "--question=q"], "--question and --context go together"),
    (["--model=m", "--input_file=f"],
     "--input_file and --output_file go together"),
    (["--model=m", "--question=q", "--context=c", "stray"],
     r"Unexpected arguments: \['stray'\]"),
])
def test_cli_usage_errors(args, match):
  proc = _run(["-m", "tfqa.cli.predict", *args], expect_fail=True)
  assert re.search(match, proc.stderr), proc.stderr[-1000:]
  # One line, not absl's usage text.
  assert proc.returncode == 1
  assert proc.stderr.startswith("tfqa_predict: error: ")
  assert proc.stderr.count("\n") == 1, proc.stderr


@pytest.mark.slow
def test_cli_runtime_errors(tmp_path):
  proc = _run(["-m", "tfqa.cli.predict", f"--model={tmp_path}/missing",
               "--question=q", "--context=c"], expect_fail=True)
  assert proc.stderr == (
      f"tfqa_predict: error: --model={tmp_path}/missing does not exist; "
      f"expected a SavedModel version directory, an export directory "
      f"(tfqa_export --export_dir) or a tfqa_train --model_dir.\n")


def test_cli_help_is_grouped():
  proc = _run(["-m", "tfqa.cli.predict", "--help"])
  groups = [line for line in proc.stdout.splitlines()
            if line and not line.startswith(" ") and line.endswith(":")]
  assert groups == ["Model:", "One question:", "A file of questions:"]


@pytest.mark.parametrize("context,start,end,width,expected", [
    ("paris is the capital", 0, 5, 200, "[[paris]] is the capital"),
    ("a" * 50 + "XY" + "b" * 50, 50, 52, 10, "…aaaa[[XY]]bbbb…"),
    ("0123456789", 8, 10, 4, "…67[[89]]"),
    ("short", -1, -1, 200, "short"),
    ("0123456789", -1, -1, 4, "0123…"),
    ("東京は日本の首都です", 0, 2, 6, "[[東京]]は日本の…"),
])
def test_mark_answer(context, start, end, width, expected):
  assert predictor_lib.mark_answer(context, start, end, width=width) == expected


def test_questions_and_contexts_must_pair_up():
  class Fake(predictor_lib.SavedModelPredictor):
    def __init__(self):  # pylint: disable=super-init-not-called
      pass

  with pytest.raises(ValueError, match="Got 2 questions and 1 contexts"):
    Fake().answer(["a", "b"], ["c"])


@pytest.mark.slow
def test_cli_unwritable_output_file_is_a_one_line_error(exported, squad_file,
                                                        tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  output = blocker / "predictions.json"
  proc = _run(["-m", "tfqa.cli.predict", f"--model={exported[1]}",
               f"--input_file={squad_file}", f"--output_file={output}"],
              expect_fail=True)
  assert proc.stderr.strip().splitlines()[-1].startswith(
      "tfqa_predict: error: ")
  assert str(blocker) in proc.stderr and "Traceback" not in proc.stderr


# ONNX exports (the `onnx` extra).

LONG_CONTEXT = " ".join(
    ["the river town is where the keeper was in 1901 ."] * 6 +
    ["paris is the capital city of france ."] +
    ["bread was built in the town of the river ."] * 3)
QUESTIONS = ["what is the capital of france ?", "who built the town ?",
             "what was built ?", "", "when was the keeper in the town ?"]
CONTEXTS = ["paris is the capital city of france .",
            "the lighthouse keeper built the town in 1887 .", LONG_CONTEXT,
            "bread was built in the town of the river .", ""]


@pytest.fixture(scope="module")
def onnx_exported(tmp_path_factory, tiny_files):
  return onnx_tiny_export(tmp_path_factory, tiny_files)


@pytest.fixture
def onnx_export_copy(onnx_exported, tmp_path):
  copy = tmp_path / "onnx_export"
  shutil.copytree(onnx_exported[1], copy)
  return str(copy)


def test_resolve_onnx_model_errors(tmp_path):
  with pytest.raises(ValueError, match=rf"{tmp_path} has no onnx/model.onnx\. "
                     r"Export with tfqa_export --onnx"):
    predictor_lib.resolve_onnx_model(str(tmp_path))
  (tmp_path / "model.txt").write_text("")
  with pytest.raises(ValueError, match=r"model\.txt is not an \.onnx file or "
                     r"an export directory"):
    predictor_lib.resolve_onnx_model(str(tmp_path / "model.txt"))
  (tmp_path / "onnx").mkdir()
  (tmp_path / "onnx" / "model.onnx").write_text("")
  assert predictor_lib.resolve_onnx_model(str(tmp_path)) == (
      str(tmp_path / "onnx" / "model.onnx"), str(tmp_path))
  assert predictor_lib.resolve_onnx_model(
      str(tmp_path / "onnx" / "model.onnx")) == (
          str(tmp_path / "onnx" / "model.onnx"), str(tmp_path))


def test_predictor_needs_its_export_directory(tmp_path):
  (tmp_path / "onnx").mkdir()
  (tmp_path / "onnx" / "model.onnx").write_text("")
  with pytest.raises(ValueError, match=r"needs its export directory .* with "
                     r"manifest\.json \(run config\) and pretrained/"):
    predictor_lib.OnnxPredictor(str(tmp_path / "onnx" / "model.onnx"))


@needs_onnx
@pytest.mark.slow
@pytest.mark.parametrize("name", ["model.onnx", "model.int8.onnx"])
def test_answers_match_the_saved_model(onnx_exported, name):
  _, export_dir = onnx_exported
  saved_model = predictor_lib.load_predictor(export_dir).answer(QUESTIONS, CONTEXTS)
  onnx_answers = predictor_lib.OnnxPredictor(
      os.path.join(export_dir, "onnx", name), verify=True).answer(
          QUESTIONS, CONTEXTS)
  assert len(onnx_answers) == len(QUESTIONS)
  if name == "model.onnx":
    for got, want in zip(onnx_answers, saved_model):
      assert (got.text, got.start_char, got.end_char) == (
          want.text, want.start_char, want.end_char)
      np.testing.assert_allclose(got.score, want.score, atol=1e-4)
  for got, context in zip(onnx_answers, CONTEXTS):
    if got.start_char >= 0:
      assert context[got.start_char:got.end_char] == got.text
    else:
      assert (got.text, got.end_char) == ("", -1)


@needs_onnx
@pytest.mark.slow
def test_export_directory_means_the_float_model(onnx_exported):
  onnx_predictor = predictor_lib.OnnxPredictor(onnx_exported[1])
  assert onnx_predictor.model_path == os.path.join(onnx_exported[1], "onnx",
                                                   "model.onnx")
  assert onnx_predictor.answer([], []) == []
  with pytest.raises(ValueError, match="Got 1 questions and 0 contexts"):
    onnx_predictor.answer(["q"], [])


@needs_onnx
@pytest.mark.slow
def test_verify_refuses_a_modified_model(onnx_export_copy):
  path = os.path.join(onnx_export_copy, "onnx", "model.int8.onnx")
  with open(path, "ab") as f:
    f.write(b"\0")
  with pytest.raises(ValueError, match=r"Refusing to load .*model\.int8\.onnx: "
                     r"its files do not match .*manifest\.json: "
                     r"model\.int8\.onnx was modified \(SHA-256 "
                     r"[0-9a-f]{12}…"):
    predictor_lib.OnnxPredictor(path, verify=True)
  manifest_path = os.path.join(onnx_export_copy, "manifest.json")
  with open(manifest_path) as f:
    manifest = json.load(f)
  del manifest["sha256"]["onnx"]
  with open(manifest_path, "w") as f:
    json.dump(manifest, f)
  with pytest.raises(ValueError, match=r"model\.int8\.onnx is not in the "
                                       r"manifest"):
    predictor_lib.OnnxPredictor(path, verify=True)


@needs_onnx
@pytest.mark.slow
def test_cli_onnx_model(onnx_exported, tmp_path):
  _, export_dir = onnx_exported
  int8 = os.path.join(export_dir, "onnx", "model.int8.onnx")
  want, = predictor_lib.OnnxPredictor(int8).answer([QUESTIONS[0]],
                                                  [CONTEXTS[0]])
  proc = _run(["-m", "tfqa.cli.predict", f"--onnx_model={int8}",
               f"--question={QUESTIONS[0]}", f"--context={CONTEXTS[0]}",
               "--verify_manifest"])
  assert proc.stdout.splitlines()[0] == (
      f"answer: {want.text if want.text else '(no answer)'}")
  with open(os.path.join(export_dir, "manifest.json")) as f:
    probe = json.load(f)["probe_source"]  # the tiny v1.1 file: 8 questions
  out = tmp_path / "predictions.json"
  proc = _run(["-m", "tfqa.cli.predict", f"--onnx_model={export_dir}",
               f"--input_file={probe}", f"--output_file={out}"])
  assert json.loads(proc.stdout)["questions"] == 8
  assert len(json.loads(out.read_text())) == 8


@pytest.mark.parametrize("args,match", [
    (["--question=q", "--context=c"], "--model is required"),
    (["--model=m", "--onnx_model=o", "--question=q", "--context=c"],
     "Pass --model or --onnx_model, not both"),
    (["--onnx_model=o", "--checkpoint=c", "--question=q", "--context=c"],
     r"--checkpoint applies to training runs \(--model\), not to "
     r"--onnx_model"),
])
def test_cli_onnx_usage_errors(args, match):
  proc = _run(["-m", "tfqa.cli.predict", *args], expect_fail=True)
  assert re.search(match, proc.stderr), proc.stderr[-1000:]


def test_cli_onnx_runtime_error_names_the_path(tmp_path):
  proc = _run(["-m", "tfqa.cli.predict", f"--onnx_model={tmp_path}",
               "--question=q", "--context=c"], expect_fail=True)
  assert (f"tfqa_predict: error: {tmp_path} has no onnx/model.onnx"
          in proc.stderr)
