"""An identity service on identity-store and FastAPI: ``python -m identity_example``."""

from identity_example.app import Config, create_app

__all__ = ["Config", "create_app"]
