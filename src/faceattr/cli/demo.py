"""`faceattr demo` (being written)."""
