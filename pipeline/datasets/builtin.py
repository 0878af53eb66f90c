"""Importing this module registers every built-in dataset adapter (``load_plugins``)."""

from comodo.pipeline.datasets import basicmotions  # noqa: F401, I001
from comodo.pipeline.datasets import czu_mhad  # noqa: F401, I001
from comodo.pipeline.datasets import ego4d  # noqa: F401, I001
from comodo.pipeline.datasets import egoexo4d  # noqa: F401, I001
from comodo.pipeline.datasets import gopro  # noqa: F401, I001
from comodo.pipeline.datasets import hapt  # noqa: F401, I001
from comodo.pipeline.datasets import manifest  # noqa: F401, I001
from comodo.pipeline.datasets import mmact  # noqa: F401, I001
from comodo.pipeline.datasets import mmea  # noqa: F401, I001
from comodo.pipeline.datasets import utd_mhad  # noqa: F401, I001
