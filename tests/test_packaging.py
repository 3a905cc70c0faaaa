"""Tests for the install and CI contract: README commands, .ci/run, wheel contents and install."""

import os
import re
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO_ROOT


def _read(name):
  return (REPO_ROOT / name).read_text(encoding="utf-8")


def test_ci_runs_exactly_the_readme_test_command():
  commands = [line.strip() for line in _read(".ci/run").splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
  runs = [c for c in commands if not c.startswith(("set ", "cd "))]
  assert runs == ["make test"]
  readme = _read("README.md")
  # The README opens with the two commands, in a code block.
  first_block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", readme,
                          re.S).group(1)
  assert [l.strip() for l in first_block.splitlines() if l.strip()] == [
      "make demo", "make test"]


def test_readme_first_screen_says_what_is_needed_and_links_resolve():
  readme = _read("README.md")
  first_screen = readme[:readme.index("```")]
  for needed in ("Python 3.11", "Linux", "macOS", "GB of disk",
                 "https://rajpurkar.github.io/SQuAD-explorer/",
                 "--tfds_dataset"):
    assert needed in first_screen, needed
  assert len(readme.splitlines()) < 150  # details live in docs/
  for doc in ["README.md", "BUILD.md", "BENCHMARKS.md",
              *(f"docs/{name}" for name in os.listdir(REPO_ROOT / "docs"))]:
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", _read(doc)):
      if not link.startswith("http"):
        target = (REPO_ROOT / doc).parent / link
        assert target.exists(), f"{doc} links to missing {link}"


def test_license_is_the_apache_2_text():
  license_text = _read("LICENSE")
  assert "Apache License\n                           Version 2.0, January 2004" \
      in license_text
  assert "END OF TERMS AND CONDITIONS" in license_text
  assert "license = Apache-2.0" in _read("setup.cfg")


def test_makefile_targets_bootstrap_the_venv_with_constraints():
  makefile = _read("Makefile")
  assert re.search(r"^test: \$\(STAMP\)$", makefile, re.M)
  assert re.search(r"^demo: \$\(STAMP\)$", makefile, re.M)
  assert "-c constraints.txt -e '.[test,onnx]'" in makefile


def test_every_pin_is_explained_in_build_md():
  build = _read("BUILD.md")
  pins = [line.split("==")[0] for line in _read("constraints.txt").splitlines()
          if "==" in line]
  unexplained = [pin for pin in pins if f"`{pin}" not in build]
  assert unexplained == []


@pytest.mark.slow
def test_wheel_builds_installs_and_imports_in_a_fresh_venv(tmp_path):
  dist = tmp_path / "dist"
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                  "--no-build-isolation", "-q", "-w", str(dist),
                  str(REPO_ROOT)], check=True, timeout=600)
  wheels = list(dist.glob("tfqa-*.whl"))
  assert len(wheels) == 1
  names = zipfile.ZipFile(wheels[0]).namelist()
  assert "tfqa/resources/sample_squad.json" in names
  assert "tfqa/cli/train.py" in names
  assert not any(name.startswith("tests/") for name in names)
  venv = tmp_path / "venv"
  subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
  python = venv / "bin" / "python"
  # Dependencies come from the pip cache/registry with the project's pins.
  subprocess.run([str(python), "-m", "pip", "install", "-q", "-c",
                  str(REPO_ROOT / "constraints.txt"), str(wheels[0])],
                 check=True, timeout=1200)
  check = ("import os, tfqa, tfqa.sample, tfqa.features, tfqa.training; "
           "assert os.path.exists(tfqa.sample.sample_path()); "
           "print(tfqa.__version__, tfqa.__file__)")
  proc = subprocess.run([str(python), "-c", check], capture_output=True,
                        text=True, cwd=tmp_path, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert str(venv) in proc.stdout
  proc = subprocess.run([str(venv / "bin" / "tfqa_train"), "--help"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0 and "Optimisation:" in proc.stdout
