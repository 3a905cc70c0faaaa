"""What a written SavedModel needs from a server: the op types core TensorFlow does not register."""

from __future__ import annotations

import tensorflow as tf

from tfqa.layout import exportdir


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
  saved_model = exportdir.saved_model_proto(saved_model_dir)
  op_types, function_names = set(), set()
  for meta_graph in saved_model.meta_graphs:
    graph = meta_graph.graph_def
    op_types.update(node.op for node in graph.node)
    for function in graph.library.function:
      function_names.add(function.signature.name)
      op_types.update(node.op for node in function.node_def)
  core = set(dir(tf.raw_ops))
  return sorted(op for op in op_types - function_names if op not in core)
