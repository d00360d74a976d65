"""Test-wide settings: the committed notebook outputs are the smoke profile's, and nothing may
reach the Hugging Face hub. Set before any test or notebook kernel starts (kernels inherit them)."""

import os

os.environ["FMTEACH_PROFILE"] = "smoke"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
