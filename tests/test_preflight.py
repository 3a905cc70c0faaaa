"""Tests for tfqa.preflight: each command's inputs checked before any work, without TensorFlow."""

import json

import pytest

from tfqa import config
from tfqa import preflight

from conftest import run_python, tiny_squad


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_files):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "train.json").write_text(json.dumps(tiny_squad(True)))
  (tmp_path / "runs" / "a" / "checkpoints").mkdir(parents=True)
  (tmp_path / "runs" / "a" / "run_config.json").write_text("{}")
  for step in (4, 8):
    (tmp_path / "runs" / "a" / "checkpoints" / f"ckpt-{step}.index").write_text("")
  return tmp_path


def _run_config(tiny_files, **features):
  return config.RunConfig(
      model=config.ModelConfig(bert_config_file=tiny_files["bert_config"],
                               vocab_file=tiny_files["vocab"]),
      data=config.DataConfig(train_file="train.json"),
      features=config.FeatureConfig(**{"max_seq_length": 32, "doc_stride": 8,
                                       "max_query_length": 12, **features}))


def test_check_train_resolves_the_model(workdir, tiny_files):
  source = preflight.check_train(_run_config(tiny_files), "runs/new")
  assert (source.kind, source.path) == ("bert_config",
                                        tiny_files["bert_config"])
  assert not (workdir / "runs" / "new").exists()


def test_check_train_refuses_windows_the_model_cannot_embed(workdir,
                                                            tiny_files):
  with pytest.raises(ValueError, match=(
      r"^Invalid value for argument `max_seq_length`\. Received: "
      r"max_seq_length=256, but the model embeds at most "
      r"max_position_embeddings=128 positions")):
    preflight.check_train(_run_config(tiny_files, max_seq_length=256),
                          "runs/new")


@pytest.mark.parametrize("model_dir, chars", [("runs/a[1]", "\\["),
                                              ("runs\\a", "\\\\")])
def test_check_train_refuses_a_model_dir_tf_reads_as_a_pattern(
    workdir, tiny_files, model_dir, chars):
  with pytest.raises(ValueError, match=(
      rf"^model_dir=.* contains {chars}, which TensorFlow's checkpoint "
      rf"reader takes for a file pattern")):
    preflight.check_train(_run_config(tiny_files), model_dir)


def test_a_missing_checkpoint_lists_the_run_s(workdir):
  with pytest.raises(ValueError, match=(
      r"^checkpoint=runs/a/checkpoints/ckpt-500 does not exist \(there is "
      r"no runs/a/checkpoints/ckpt-500\.index\); expected a checkpoint prefix "
      r"of runs/a\. Existing ones: runs/a/checkpoints/ckpt-4, "
      r"runs/a/checkpoints/ckpt-8\.$")):
    preflight.check_eval("runs/a", checkpoint="runs/a/checkpoints/ckpt-500")


def test_a_run_without_checkpoints_says_so(workdir):
  (workdir / "runs" / "b").mkdir()
  (workdir / "runs" / "b" / "run_config.json").write_text("{}")
  with pytest.raises(ValueError, match=(
      r"^checkpoint=ckpt-1 does not exist \(there is no ckpt-1\.index\); "
      r"expected a checkpoint prefix \(runs/b has no checkpoint yet\)\.$")):
    preflight.check_export("runs/b", export_dir="exports/b",
                           checkpoint="ckpt-1")


def test_preflight_does_not_import_tensorflow():
  code = ("import sys; from tfqa import preflight; "
          "print('tensorflow' in sys.modules, 'transformers' in sys.modules)")
  out = run_python(["-c", code]).stdout
  assert out.split() == ["False", "False"]


def _export_entries(directory, names):
  directory.mkdir(exist_ok=True)
  for name in names:
    if name.endswith(".json") or name == "notes.txt":
      (directory / name).write_text("{}")
    else:
      (directory / name).mkdir()


@pytest.mark.parametrize("entries", [
    [],  # empty
    ["notes.txt", "saved_model"],  # nothing an export replaces
    [".tfqa-export", "pretrained", "onnx"],  # an export wrote there
])
def test_export_dir_that_an_export_may_write_to(workdir, entries):
  _export_entries(workdir / "exports", entries)
  preflight.check_export("runs/a", export_dir="exports")
  assert sorted(p.name for p in (workdir / "exports").iterdir()) == sorted(
      entries)


def test_an_export_made_before_the_marker_is_recognised_by_its_manifest(
    workdir):
  (workdir / "exports" / "pretrained").mkdir(parents=True)
  (workdir / "exports" / "manifest.json").write_text(json.dumps(
      {"model_name": "tfqa", "paths": {}, "sha256": {}}))
  preflight.check_export("runs/a", export_dir="exports")


@pytest.mark.parametrize("entries, found", [
    (["pretrained", "notes.txt"], "pretrained/"),
    (["tflite", "onnx", "saved_model"], "onnx/, tflite/"),
    # A manifest.json of something else (a web app's, say).
    (["manifest.json"], "manifest.json"),
])
def test_export_dir_holding_what_an_export_would_replace_is_refused(
    workdir, entries, found):
  _export_entries(workdir / "exports", entries)
  with pytest.raises(ValueError) as e:
    preflight.check_export("runs/a", export_dir="exports")
  assert str(e.value) == (
      f"export_dir=exports holds {found}, which an export replaces, but no "
      f"export wrote there (no .tfqa-export); expected a new or empty "
      f"directory, an earlier export, or one without manifest.json, "
      f"pretrained/, onnx/, tflite/. Nothing was written.")
  assert sorted(p.name for p in (workdir / "exports").iterdir()) == sorted(
      entries)


@pytest.fixture
def trained_elsewhere(workdir, tiny_files):
  """runs/t, trained from workdir with relative data paths, seen from
  another directory."""
  from tfqa.layout import rundir  # pylint: disable=import-outside-toplevel
  run_config = _run_config(tiny_files)
  run_config = rundir.with_overrides(run_config,
                                     {"data.eval_file": "train.json"})
  (workdir / "runs" / "t" / "checkpoints").mkdir(parents=True)
  (workdir / "runs" / "t" / "checkpoints" / "ckpt-4.index").write_text("")
  rundir.write_run_config(str(workdir / "runs" / "t"), run_config)
  (workdir / "elsewhere").mkdir()
  return run_config


def _not_found(name, workdir, advice):
  return (f"the run's data.{name}=train.json does not exist (relative to the "
          f"working directory {workdir / 'elsewhere'}); expected a SQuAD JSON "
          f"file ({advice}).")


def test_the_runs_relative_data_files_are_named_as_the_runs(
    workdir, tiny_files, trained_elsewhere, monkeypatch):
  monkeypatch.chdir(workdir / "elsewhere")
  with pytest.raises(ValueError) as e:
    preflight.check_export("../runs/t", export_dir="exports")
  assert str(e.value) == _not_found(
      "eval_file", workdir,
      "pass probe_file, or run from the directory training started in")
  # tfqa_export words it in its flags.
  assert e.value.worded({"probe_file": "--probe_file"}) == _not_found(
      "eval_file", workdir,
      "pass --probe_file, or run from the directory training started in")
  with pytest.raises(ValueError) as e:
    preflight.check_eval("../runs/t")
  assert str(e.value) == _not_found(
      "eval_file", workdir,
      "pass eval_file, or run from the directory training started in")
  with pytest.raises(ValueError) as e:
    preflight.check_train(trained_elsewhere, "../runs/t")
  assert str(e.value) == _not_found(
      "train_file", workdir, "run from the directory training started in")
  # Given other files, or run where training started, all is well.
  preflight.check_export("../runs/t", export_dir="exports",
                         probe_file="../train.json")
  preflight.check_eval("../runs/t", eval_file="../train.json")
  monkeypatch.chdir(workdir)
  preflight.check_export("runs/t", export_dir="exports")
  preflight.check_eval("runs/t")
  preflight.check_train(trained_elsewhere, "runs/t")


def test_unless_checked_checks_only_what_the_passed_check_did_not_cover():
  calls = []

  def check(**values):
    calls.append(values)
    return preflight.Checked(tuple(values.items()))

  checked = check(model_dir="runs/a", checkpoint=None)
  assert preflight.unless_checked(checked, check, model_dir="runs/a") is checked
  assert preflight.unless_checked(checked, check, model_dir="runs/a",
                                  checkpoint=None) is checked
  preflight.unless_checked(checked, check, model_dir="runs/b")
  preflight.unless_checked(checked, check, model_dir="runs/a", eval_file="x")
  preflight.unless_checked(None, check, model_dir="runs/a")
  assert calls == [{"model_dir": "runs/a", "checkpoint": None},
                   {"model_dir": "runs/b"},
                   {"model_dir": "runs/a", "eval_file": "x"},
                   {"model_dir": "runs/a"}]


@pytest.fixture
def checked_paths(monkeypatch):
  """Every (argument, path) paths.check_path is asked about, in order."""
  from tfqa.layout import paths
  asked = []
  check_path = paths.check_path

  def recording(path, kind, **kwargs):
    asked.append((kwargs["argument"], path))
    return check_path(path, kind, **kwargs)

  monkeypatch.setattr(paths, "check_path", recording)
  return asked


def test_the_api_checks_each_input_once_down_to_the_checkpoint(
    exported, tmp_path, checked_paths):
  from tfqa import api
  from tfqa.layout import rundir
  model_dir = exported[0]
  checkpoint = rundir.checkpoints_on_disk(model_dir)[-1]
  api.evaluate(model_dir, checkpoint=checkpoint,
               output_dir=str(tmp_path / "eval"))
  predictor = api.load_predictor(model_dir, checkpoint=checkpoint)
  assert predictor("Who?", "Nobody.").text is not None
  eval_file = rundir.read_run_config(model_dir).data.eval_file
  assert checked_paths == [
      ("model_dir", model_dir), ("checkpoint", checkpoint),
      ("the run's data.eval_file", eval_file),
      ("output_dir", str(tmp_path / "eval")),
      ("model", model_dir), ("checkpoint", checkpoint)]


def test_scoring_after_its_check_does_not_check_again(workdir, checked_paths):
  from tfqa.evaluation import scoring
  (workdir / "pred.json").write_text("{}")
  checked = preflight.check_score("train.json", "pred.json")
  scoring.score_files("train.json", "pred.json", checked=checked)
  scoring.score_files("train.json", "pred.json")  # A caller without one.
  assert checked_paths == [("data_file", "train.json"),
                           ("predictions_file", "pred.json")] * 2
