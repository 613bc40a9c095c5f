"""`faceattr data synth` (being written)."""
