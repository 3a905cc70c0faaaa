"""The embedded SQuAD-format sample that ships with tfqa (offline default for the demo and notebooks)."""

from __future__ import annotations

import importlib.resources


def sample_path() -> str:
  """Returns the absolute filesystem path of the bundled `sample_squad.json`.

  The file is a small SQuAD v2.0 dataset (nested official JSON format) with
  original text written for tfqa; see `tfqa/resources/README.md`.
  """
  return str(importlib.resources.files("tfqa") / "resources" /
             "sample_squad.json")
