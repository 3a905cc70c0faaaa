"""Exports a training run for deployment: TF Serving SavedModel, Hugging Face copy, verification, manifest, ONNX/TFLite.

`tfqa.export(model_dir, export_dir, ...)` calls this package: it is the API
call tfqa.api.export (tfqa_export's), see help(tfqa.api.export).

One module per job; `export_model` (pipeline) runs them in order:

  saved_model  the serving module, tf.saved_model.save, warm-up requests
  pretrained   the save_pretrained copy: PyTorch model.safetensors (transformers 5), tf_model.h5 (4.57 TF)
  verify       parity of every copy with the checkpoint (check_parity)
  portable     ONNX, int8 ONNX and int8 TFLite, checked on the probe set
  card         pretrained/README.md (the model card)
  manifest     manifest.json (hashes, signatures, versions, checks)
  publish      atomic renames into place, recovery after a killed export
  threshold    the no-answer threshold an export applies

The directory layout, manifest reading and digests are tfqa.layout.exportdir's (a
leaf that readers import without this package). Everything is built in
hidden temp directories, checked there, and renamed into place only when
every check passed, so a server or reader never sees a half-written version.
"""

import importlib
import sys
import types

from tfqa.export.card import model_card
from tfqa.export.pipeline import ExportHooks
from tfqa.export.pipeline import ExportResult
from tfqa.export.pipeline import STAGES
from tfqa.export.pipeline import export_model
from tfqa.export.portable import PortableExportError
from tfqa.export.pretrained import save_pretrained
from tfqa.export.pretrained import write_safetensors
from tfqa.export.publish import Publisher
from tfqa.export.publish import recover_interrupted
from tfqa.export.saved_model import serving_module
from tfqa.export.saved_model import serving_requirements
from tfqa.export.saved_model import warmup_records
from tfqa.export.saved_model import write_warmup_requests
from tfqa.export.threshold import best_null_threshold
from tfqa.export.threshold import with_null_threshold
from tfqa.export.verify import ExportVerificationError
from tfqa.export.verify import check_parity
from tfqa.export.verify import compare_safetensors
from tfqa.export.verify import probe_examples
from tfqa.layout.exportdir import LOGITS_SIGNATURE
from tfqa.layout.exportdir import MANIFEST_FILE
from tfqa.layout.exportdir import MODEL_CARD_FILE
from tfqa.layout.exportdir import PRETRAINED_SUBDIR
from tfqa.layout.exportdir import SAFETENSORS_FILE
from tfqa.layout.exportdir import SAVED_MODEL_SUBDIR
from tfqa.layout.exportdir import SERVING_SIGNATURE
from tfqa.layout.exportdir import WARMUP_FILE
from tfqa.layout.exportdir import existing_versions
from tfqa.layout.exportdir import file_digests
from tfqa.layout.exportdir import next_version
from tfqa.layout.exportdir import read_manifest
from tfqa.serving.introspection import signature_specs


class _CallablePackage(types.ModuleType):
  """The package `tfqa.export` is also the API function `tfqa.export(...)`:
  importing a subpackage sets the parent's attribute to it, so the API's
  name and the package's are one object."""

  def __call__(self, *args, **kwargs):
    # By name: tfqa.api imports this package.
    return importlib.import_module("tfqa.api").export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
