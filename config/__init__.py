"""Built-in configuration files (rubric, stage presets, example org) and models."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
