"""Fine-tuning a pretrained BERT for text classification (lesson 07); being split into rooms."""

from .loop import *  # noqa: F401,F403
from .loop import __all__, main  # noqa: F401
