"""faceattr: train, evaluate and serve facial-attribute classifiers."""

import os

# OpenMP threads that spin while they wait lose their time slices on a busy machine (two cores
# shared with other work): torch's two threads then ran a MobileNetV2 2-3x slower than one thread
# and `faceattr evaluate` spent more system than user time. Waiting passively avoids it; libgomp
# reads the variable when torch loads, so it is set here, before any faceattr module imports
# torch, unless the user chose a policy (benchmarks/evaluate_cpu.py measures it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import TYPE_CHECKING, Any  # noqa: E402

from faceattr.attributes import ATTRIBUTE_INDEX, ATTRIBUTES  # noqa: E402

if TYPE_CHECKING:
    from faceattr.inference.api import predict

__version__ = "0.1.0"
__all__ = ["ATTRIBUTES", "ATTRIBUTE_INDEX", "__version__", "predict"]


def __getattr__(name: str) -> Any:
    """``faceattr.predict`` (:func:`faceattr.inference.api.predict`), imported on first use:
    ``import faceattr`` stays free of torch."""
    if name == "predict":
        from faceattr.inference.api import predict

        return predict
    raise AttributeError(f"module 'faceattr' has no attribute {name!r}")
