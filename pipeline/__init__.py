"""comodo.pipeline."""
