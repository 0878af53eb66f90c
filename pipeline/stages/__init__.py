"""Pipeline stages: one module per stage, each with its config and run()."""
