"""The evidence page: people hand in evidence through their reminders' signed links; reviewers (the safety
section, 包保/分管 leaders) sign in with their own accounts to review it.

``create_app()`` builds the FastAPI app; ``python -m pingan.web`` (or ``pingan web``) serves it.
"""

from pingan.web.app import create_app

__all__ = ["create_app"]
