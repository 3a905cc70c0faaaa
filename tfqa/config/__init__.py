"""tfqa's settings as frozen dataclasses: the one place that holds its defaults.

  run       RunConfig and its sections (a training run; run_config.json)
  export    ExportConfig, PortableConfig (tfqa_export) and the batch sizes
            of prediction and verification
  checks    the checks their __post_init__ share
  durations durations such as "1h30m" (time_budget), to seconds
  comments  the comments above their fields (documentation and flag help)

`from tfqa.config import RunConfig` (and every name below) reads them here.
"""

from tfqa.config.comments import field_comments
from tfqa.config.export import DEFAULT_MAX_F1_DROP
from tfqa.config.export import DEFAULT_OPSET
from tfqa.config.export import EXPORT_FIELD_HELP_GROUPS
from tfqa.config.export import EXPORT_FLAG_FIELDS
from tfqa.config.export import EXPORT_FLAG_LOWER_BOUNDS
from tfqa.config.export import EXPORT_SECTION_HELP_GROUPS
from tfqa.config.export import ExportConfig
from tfqa.config.export import MIN_OPSET
from tfqa.config.export import ONNX_BATCH_SIZE
from tfqa.config.export import PREDICT_BATCH_SIZE
from tfqa.config.export import PortableConfig
from tfqa.config.export import QUANTIZE_MODES
from tfqa.config.export import VERIFY_BATCH_SIZE
from tfqa.config.run import BUNDLED_MODEL_NAME
from tfqa.config.run import DISTRIBUTION_STRATEGIES
from tfqa.config.run import DataConfig
from tfqa.config.run import DecodeConfig
from tfqa.config.run import FIELD_CHOICES
from tfqa.config.run import FIELD_HELP_GROUPS
from tfqa.config.run import FeatureConfig
from tfqa.config.run import KEEP_BEST_METRICS
from tfqa.config.run import MIXED_PRECISION_POLICIES
from tfqa.config.run import ModelConfig
from tfqa.config.run import PADDING_MODES
from tfqa.config.run import PROGRESS_EVERY_STEPS
from tfqa.config.run import PipelineConfig
from tfqa.config.run import RunConfig
from tfqa.config.run import SECTION_HELP_GROUPS
from tfqa.config.run import SECTION_TYPES
from tfqa.config.run import SPAN_SCORINGS
from tfqa.config.run import SPECIAL_TOKENS_PER_WINDOW
from tfqa.config.run import TFDS_NAMES
from tfqa.config.run import TrainConfig
