"""The web app: ``create_app(predictor, store, settings)`` and ``faceattr serve``."""

from faceattr.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
