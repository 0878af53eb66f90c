"""Dataset adapters, one module each; ``builtin`` registers them all (``registry.load_plugins``).

Importing the package imports no adapter: a pool worker that unpickles one adapter loads
that adapter's module only.
"""
