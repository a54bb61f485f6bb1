"""pymager's Python client: ``Client`` and the exceptions it raises (``pymager.client.errors``).

with Client("http://localhost:8000", key=os.environ["PYMAGER_KEY"]) as client:
    client.upload("sample", "photo.jpg", focus=(0.3, 0.4))
    url = client.derived_url("sample", 800, 0, "webp", mode="fit")
"""

from pymager.client.errors import *  # noqa: F403 - the exception classes are the client's API
from pymager.client.errors import __all__ as _errors
from pymager.client.session import Client, Retry
from pymager.client.urls import derived_path

__all__ = ["Client", "Retry", "derived_path", *_errors]
