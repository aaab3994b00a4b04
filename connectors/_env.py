"""What the connectors read from the environment besides credentials: endpoint variables."""

from __future__ import annotations

import os
from urllib.parse import urlparse


def endpoint_host(variable: str) -> str | None:
    """The host (``host:port``) of the endpoint URL in environment variable ``variable``, or of
    a bare ``host:port`` there; ``None`` when it is unset or empty."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return None
    return urlparse(value if "://" in value else f"http://{value}").netloc or value
