"""SQuAD JSON -> checked examples -> windows -> tf.data batches."""
