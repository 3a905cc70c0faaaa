"""The one Keras fit of a run: setup, callbacks, evaluation during training, preemption, schedules, strategies."""
