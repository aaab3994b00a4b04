"""AWS clients for the connectors: fresh credentials every time, shared service models.

Each client comes from a new botocore session, so credentials, region and endpoint are resolved
from the environment as it is at that moment, and no client or credential outlives the store or
credential operation that asked for it. What is shared is botocore's loader of its own data
files (the parsed S3 and IAM service models, endpoint rules): loading them is most of the cost
of a new client (about 0.2 s, against 0.03 s with the loader shared), and they hold nothing
about who is calling.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.loaders
import botocore.session
from botocore.config import Config


@functools.cache
def _loader() -> botocore.loaders.Loader:
    loader: botocore.loaders.Loader = botocore.session.get_session().get_component("data_loader")
    return loader


def new_client(service: str, config: Config) -> Any:
    """A new ``service`` client with the standard credential chain as the environment is now."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _loader())
    return session.create_client(service, config=config)
