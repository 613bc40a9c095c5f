"""Faces in image files: decoding photos safely (``images``) and the registered face detectors
(``detection``, ``yunet``). Below the data layer, which runs them over datasets, and inference."""
