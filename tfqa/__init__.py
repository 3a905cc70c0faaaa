"""tfqa: fine-tune, checkpoint and export BERT extractive question answering in TensorFlow.

The API: tfqa.train, tfqa.evaluate, tfqa.export, tfqa.load_predictor and the
config dataclasses (tfqa.RunConfig, ...). They load on first use, so
`import tfqa` stays light (TensorFlow is imported when training starts).
"""

import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it.
_API = {
    "train": "tfqa.api", "evaluate": "tfqa.api",
    "load_predictor": "tfqa.api", "Predictor": "tfqa.api",
    "EvalResult": "tfqa.api",
    "RunConfig": "tfqa.config", "ModelConfig": "tfqa.config",
    "DataConfig": "tfqa.config", "FeatureConfig": "tfqa.config",
    "PipelineConfig": "tfqa.config", "DecodeConfig": "tfqa.config",
    "TrainConfig": "tfqa.config", "ExportConfig": "tfqa.config",
}
__all__ = ["__version__", "export", *_API]


def __getattr__(name):
  if name == "export":
    # The export package, which calls tfqa.api.export when called (one
    # object for the package and the API function of the same name).
    return importlib.import_module("tfqa.export")
  if name in _API:
    # By name: a module-level import would import every stage with tfqa.
    return getattr(importlib.import_module(_API[name]), name)
  raise AttributeError(f"module 'tfqa' has no attribute {name!r}")


def __dir__():
  return sorted({*globals(), "export", *_API})
