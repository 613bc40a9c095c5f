"""`faceattr data landmarks` (being written)."""
