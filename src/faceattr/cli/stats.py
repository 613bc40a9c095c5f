"""`faceattr data stats` (being written)."""
