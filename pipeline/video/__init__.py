"""Video frames for teachers: decode only what windows need, sample, render depth, preprocess."""
