"""Unsupervised Modality Adaptation: labelled video, unlabelled paired IMU, IMU-only test.

Methods (``METHODS``): ``st`` (student-teacher pseudo-labels), ``ca`` (contrastive alignment
of one latent vector per modality), ``c3t`` (position-wise contrastive alignment of t_rec
latent vectors, one of four heads). Splits, encoders, pure losses, training orders, the noise
suite and the report are separate modules; ``comodo.pipeline.stages.uma`` orders them.
"""

from comodo.pipeline.uma import fusion as _fusion  # noqa: F401  (registers the fusion baselines)
from comodo.pipeline.uma.methods import METHODS, build_method
from comodo.pipeline.uma.noise import NOISES
from comodo.pipeline.uma.splits import UmaSplits, make_splits

__all__ = ["METHODS", "NOISES", "UmaSplits", "build_method", "make_splits"]
