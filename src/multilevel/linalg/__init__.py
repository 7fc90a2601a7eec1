"""linalg layer."""
