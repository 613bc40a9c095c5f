"""faceattr: train, evaluate and serve facial-attribute classifiers."""

from faceattr.attributes import ATTRIBUTE_INDEX, ATTRIBUTES

__version__ = "0.1.0"
__all__ = ["ATTRIBUTES", "ATTRIBUTE_INDEX", "__version__"]
