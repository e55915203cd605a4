"""Typed settings of each pipeline stage; their fields are the command-line flags.

Every dataclass here is parsed by ``transformers.HfArgumentParser`` in ``cli.py`` from flags or a
YAML file. Checks live in ``__post_init__`` and raise ``ValueError`` with a clear message. One
module per part of the pipeline: ``data`` (prepare), ``train`` (tokenizer, model, training,
sweeps, evaluation), ``generate`` (pieces, takes, controls, the app, Spaces).
"""

from mmmgen.config.data import (  # noqa: F401
    CodecConfig,
    PrepareConfig,
)
from mmmgen.config.generate import (  # noqa: F401
    CHORD_RULES,
    SPACE_COLORS,
    AppConfig,
    ChordsConfig,
    ControlsConfig,
    ExtendConfig,
    FollowConfig,
    GenerateConfig,
    HarmonizeConfig,
    InfillConfig,
    PieceConfig,
    SpaceConfig,
    TakesConfig,
)
from mmmgen.config.train import (  # noqa: F401
    BATCHING,
    FINETUNE_BUDGET_EPOCHS,
    FINETUNE_DEFAULTS,
    PRESETS,
    SHAPE_FIELDS,
    TRAIN_DEFAULTS,
    EvaluateConfig,
    ModelConfig,
    SizeConfig,
    SweepConfig,
    TokenizerConfig,
    TrainConfig,
)
