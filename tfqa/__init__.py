"""tfqa: fine-tune, checkpoint and export BERT extractive question answering in TensorFlow."""

__version__ = "0.1.0"
