"""Saved fits: ``fit.save(path)`` and ``multilevel.load(path, data=None)`` in an open,
versioned format (JSON and NumPy arrays in a zip, never pickle). See docs/saved_fits.md."""

from multilevel.io.saved_fit import load, save
from multilevel.results.base import INFERENCE_HOOKS

INFERENCE_HOOKS["save"] = save

__all__ = ["load", "save"]
