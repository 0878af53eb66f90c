"""Evaluation of exported encoders on frozen features."""
