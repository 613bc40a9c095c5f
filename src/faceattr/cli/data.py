"""`faceattr data data` (being written)."""
