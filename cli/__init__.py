"""comodo.cli."""
