"""Command-line interface (calls only the public API)."""
