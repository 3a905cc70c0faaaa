"""Tests for tfqa's structure: the import graph of tfqa/ (lazy imports included) has no cycle, readers never reach the export writer, no module is too long, only tfqa/layout/fs.py touches files."""

import ast
import importlib
import os
import pkgutil

import pytest

import tfqa

TFQA_DIR = os.path.dirname(os.path.abspath(tfqa.__file__))
# Longest module tfqa/ may hold (docs/ARCHITECTURE.md): past it, split by job.
MAX_MODULE_LINES = 600
# Modules that read what an export wrote; they may import the export's layout
# (tfqa.exportdir) but never the package that writes exports.
READERS = ("tfqa.inference.predictor", "tfqa.inference.logits",
           "tfqa.integrity", "tfqa.checkpointing", "tfqa.exportdir")
WRITER = "tfqa.export"
# The one module that reads, writes, lists, renames and deletes files.
FS_MODULE = "tfqa.layout.fs"
# Modules that may touch files themselves, each for a reason that keeps
# user paths (run, export, data directories) out of them.
FILE_CALLS_ALLOWED = {
    "tfqa.paths": "checks the kind of a local path (os.stat, before "
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


def test_no_module_is_too_long():
  too_long = {}
  for name, path in module_files(TFQA_DIR, "tfqa").items():
    with open(path, encoding="utf-8") as f:
      lines = sum(1 for _ in f)
    if lines > MAX_MODULE_LINES:
      too_long[name] = lines
  assert too_long == {}, (f"Modules over {MAX_MODULE_LINES} lines (split "
                          f"them by job): {too_long}")


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
