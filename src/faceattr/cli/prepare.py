"""`faceattr data prepare` (being written)."""
