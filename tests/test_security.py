"""Security properties across tfqa: no pickle or code from data files, no path from a file escapes its directory."""

import json
import pathlib
import re

import pytest

from tfqa.inference import predictor
from tfqa.layout import rundir

from conftest import REPO_ROOT

# Ways Python turns bytes into code or objects. tfqa reads only JSON,
# TensorFlow checkpoints/SavedModels, HDF5/safetensors weights and text.
_FORBIDDEN = [
    r"\bimport pickle\b", r"\bpickle\.", r"\bcPickle\b", r"\bdill\b",
    r"\bshelve\b", r"\bmarshal\b", r"\bjoblib\b", r"allow_pickle\s*=\s*True",
    r"\btorch\.load\(", r"\byaml\.(unsafe_)?load\(", r"(?<![.\w])eval\(",
    r"(?<![.\w])exec\(", r"\bobject_hook\b", r"\bfrom_pt\s*=\s*True",
    r"pytorch_model\.bin",
]
# Not listed: use_safetensors=False. With the TF model classes tfqa loads it
# selects tf_model.h5 (an export's pretrained/ also holds a PyTorch
# model.safetensors that transformers 4.57's TF loader cannot read); the
# TF loader reads pickled PyTorch weights only with from_pt=True, listed.


def _sources():
  roots = [REPO_ROOT / "tfqa", REPO_ROOT / "tools"]
  return sorted(p for root in roots for p in root.rglob("*.py"))


def test_sources_exist():
  names = {p.name for p in _sources()}
  assert {"squad.py", "checkpointing.py", "predictor.py", "export.py",
          "chaos.py"} <= names


@pytest.mark.parametrize("pattern", _FORBIDDEN)
def test_no_source_deserializes_code_or_pickles(pattern):
  hits = []
  for path in _sources():
    for number, line in enumerate(path.read_text(encoding="utf-8")
                                  .splitlines(), 1):
      if re.search(pattern, line) and not line.lstrip().startswith("#"):
        hits.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
  assert hits == []


def test_run_config_is_data_only(tmp_path):
  # A planted object-construction payload is an unknown section, nothing more.
  (tmp_path / "run_config.json").write_text(json.dumps({
      "model": {"model": "m"}, "data": {},
      "__reduce__": ["os.system", ["touch pwned"]]}), encoding="utf-8")
  with pytest.raises(ValueError, match=r"unknown section\(s\) "
                                       r"\['__reduce__'\]"):
    rundir.read_run_config(str(tmp_path))
  assert not (tmp_path / "pwned").exists()


def _export_with_manifest(root, model_name):
  (root / "saved_model" / "tfqa" / "1").mkdir(parents=True)
  (root / "saved_model" / "tfqa" / "1" / "saved_model.pb").write_bytes(b"")
  (root / "manifest.json").write_text(json.dumps({"model_name": model_name}))


@pytest.mark.parametrize("model_name", ["../../elsewhere", "/tmp/elsewhere",
                                        "..", "a/b", "", 3])
def test_manifest_model_name_cannot_steer_the_load_outside(tmp_path,
                                                          model_name):
  _export_with_manifest(tmp_path, model_name)
  with pytest.raises(ValueError,
                     match=rf"manifest.json: model_name {re.escape(repr(model_name))} "
                           rf"is not a directory name inside "
                           rf"{re.escape(str(tmp_path))}/saved_model; refused"):
    predictor.resolve_saved_model(str(tmp_path))


def test_manifest_model_name_inside_resolves(tmp_path):
  _export_with_manifest(tmp_path, "tfqa")
  assert predictor.resolve_saved_model(str(tmp_path)) == str(
      tmp_path / "saved_model" / "tfqa" / "1")


def test_readme_documents_untrusted_models():
  readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
  assert "treat one from an untrusted" in readme
  assert "--verify_manifest" in readme
  assert "docs/RELIABILITY.md" in readme
  assert pathlib.Path(REPO_ROOT / "docs" / "RELIABILITY.md").exists()
