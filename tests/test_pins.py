"""Tests for tfqa.pins: parsing constraints, finding them, and checking installed versions."""

import importlib.metadata

import pytest

from conftest import REPO_ROOT
from tfqa import pins


def test_parse_pins_normalizes_names_and_skips_comments():
  text = "# pins\nTF_Keras==2.21.0  # Keras 2\n\ntensorflow == 2.21.0\n"
  assert pins.parse_pins(text) == {"tf-keras": "2.21.0",
                                   "tensorflow": "2.21.0"}


@pytest.mark.parametrize("line", ["numpy>=2", "numpy", "-r other.txt",
                                  "numpy==2.4.6; python_version<'3.12'"])
def test_parse_pins_refuses_anything_but_exact_pins(line):
  with pytest.raises(ValueError, match=r"c\.txt line 2: .*expected name==version"):
    pins.parse_pins("numpy==2.4.6\n" + line, source="c.txt")


def test_repository_constraints_parse():
  parsed = pins.parse_pins(
      (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8"))
  assert parsed["tensorflow"] == "2.21.0"


def test_constraints_path_prefers_the_checkout(tmp_path):
  (tmp_path / "tfqa").mkdir()
  (tmp_path / "constraints.txt").write_text("numpy==1\n", encoding="utf-8")
  assert pins.constraints_path(str(tmp_path / "tfqa")) == str(
      tmp_path / "constraints.txt")
  assert pins.constraints_path() == str(REPO_ROOT / "constraints.txt")


def test_constraints_path_names_both_places_when_neither_exists(
    tmp_path, monkeypatch):
  (tmp_path / "tfqa").mkdir()

  def no_distribution(name):
    raise importlib.metadata.PackageNotFoundError(name)

  monkeypatch.setattr(pins.importlib.metadata, "distribution", no_distribution)
  with pytest.raises(FileNotFoundError,
                     match=r"No constraints.txt next to .*share/tfqa"):
    pins.constraints_path(str(tmp_path / "tfqa"))


def test_required_distributions_follows_requirements_without_extras():
  graph = {
      "tfqa": ["TensorFlow>=2.21", "tf_keras", "onnx; extra == 'onnx'",
               "old-shim; python_version < '3.0'"],
      "tensorflow": ["numpy>=1.26", "tf-keras"],
      "tf-keras": None,
      "numpy": [],
  }

  def requires(name):
    if name not in graph:
      raise importlib.metadata.PackageNotFoundError(name)
    return graph[name]

  assert pins.required_distributions("tfqa", requires=requires) == {
      "tfqa", "tensorflow", "tf-keras", "numpy"}


def test_mismatches_names_each_distribution_off_its_pin():
  installed = {"tensorflow": "2.20.0", "numpy": "2.4.6", "onnx": "1.0"}

  def version(name):
    if name not in installed:
      raise importlib.metadata.PackageNotFoundError(name)
    return installed[name]

  found = pins.mismatches(
      {"tensorflow": "2.21.0", "numpy": "2.4.6", "tf-keras": "2.21.0",
       "onnx": "1.23.2"},
      ["numpy", "TensorFlow", "tf_keras", "absl-py"], version=version)
  # onnx is pinned but not needed; absl-py is needed but not pinned.
  assert found == ["tensorflow 2.20.0 (pinned 2.21.0)",
                   "tf-keras not installed (pinned 2.21.0)"]


def test_check_environment_passes_here_and_reports_versions():
  versions = pins.check_environment()
  assert list(versions) == list(pins.SHOWN)
  assert versions["tensorflow"] == "2.21.0"


def test_check_environment_names_every_mismatch(tmp_path):
  path = tmp_path / "constraints.txt"
  path.write_text("tensorflow==0.1\nnumpy==0.2\nonnx==0.3\n", encoding="utf-8")
  with pytest.raises(RuntimeError, match=(
      r"differ from tfqa's pins in .*constraints.txt: numpy \S+ \(pinned "
      r"0.2\); tensorflow 2.21.0 \(pinned 0.1\)\. Expected the pinned")):
    pins.check_environment(str(path))


def test_installed_version_or_none():
  assert pins.installed_version("numpy") == importlib.metadata.version("numpy")
  assert pins.installed_version("no-such-distribution-tfqa") is None
