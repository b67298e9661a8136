"""The evidence page: people hand in evidence through their reminders' signed links; the operator reviews it.

``create_app()`` builds the FastAPI app; ``python -m pingan.web`` (or ``pingan web``) serves it.
"""

from pingan.web.app import create_app

__all__ = ["create_app"]
