"""What a written SavedModel shows a server: its saved_model.pb, signatures, and the op types core TensorFlow does not register."""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfqa.layout import exportdir
from tfqa.layout import fs


def saved_model_proto(saved_model_dir: str):
  """The parsed saved_model.pb of a SavedModel directory.

  Raises:
    ValueError: the directory holds no saved_model.pb.
  """
  path = os.path.join(saved_model_dir, exportdir.SAVED_MODEL_FILE)
  if not fs.exists(path):
    raise ValueError(
        f"Invalid value for argument `saved_model_dir`. Received: "
        f"{saved_model_dir!r}, which holds no saved_model.pb. Expected a "
        f"directory written by tf.saved_model.save.")
  saved_model = saved_model_pb2.SavedModel()
  saved_model.ParseFromString(fs.read_bytes(path))
  return saved_model


def signature_specs(saved_model_dir: str) -> dict:
  """Inputs and outputs (dtype, shape; None for unknown) of each signature.

  Read from saved_model.pb: exactly what TF Serving will see.
  """
  specs = {}
  meta_graph = saved_model_proto(saved_model_dir).meta_graphs[0]
  for name, signature in meta_graph.signature_def.items():
    if name.startswith("__"):  # __saved_model_init_op
      continue
    specs[name] = {
        kind: {key: {"dtype": tf.dtypes.as_dtype(info.dtype).name,
                     "shape": [None if d.size < 0 else d.size
                               for d in info.tensor_shape.dim]}
               for key, info in sorted(getattr(signature, kind).items())}
        for kind in ("inputs", "outputs")}
  return dict(sorted(specs.items()))


def custom_ops_used(saved_model_dir: str) -> list[str]:
  """Op types in a SavedModel that core TensorFlow does not register.

  Looks at every node of the SavedModel's graphs and of all functions in their
  function libraries; an op counts as core when `tf.raw_ops` has it. Calls of
  library functions are not ops and are skipped.

  Args:
    saved_model_dir: a directory written by `tf.saved_model.save`.

  Returns:
    The sorted op type names (e.g. tensorflow_text's), for the export
    manifest: the servers loading the model must register them.

  Raises:
    ValueError: the directory holds no saved_model.pb.
  """
  saved_model = saved_model_proto(saved_model_dir)
  op_types, function_names = set(), set()
  for meta_graph in saved_model.meta_graphs:
    graph = meta_graph.graph_def
    op_types.update(node.op for node in graph.node)
    for function in graph.library.function:
      function_names.add(function.signature.name)
      op_types.update(node.op for node in function.node_def)
  core = set(dir(tf.raw_ops))
  return sorted(op for op in op_types - function_names if op not in core)
