"""Raw-text question answering in TensorFlow graph ops, for TF Serving.

  tokenizer      GraphBertTokenizer: WordPiece with offsets in graph ops
  windows        question/context windows (as features.build_features)
  decoding       span decoding (as answers.decode_predictions)
  module         QAServingModule: the exported serving_default
  introspection  signature_specs, custom_ops_used: what a model server sees and must register
"""

from tfqa.serving.introspection import custom_ops_used
from tfqa.serving.introspection import saved_model_proto
from tfqa.serving.introspection import signature_specs
from tfqa.serving.module import QAServingModule
from tfqa.serving.tokenizer import GraphBertTokenizer
from tfqa.serving.tokenizer import MAX_CHARS_PER_WORD
from tfqa.serving.tokenizer import TokenizedText
