"""comodo.stores."""
