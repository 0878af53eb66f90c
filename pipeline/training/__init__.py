"""Distillation training: paired-store streaming, the loop, checkpoints, DDP and export."""
