"""Defaults of the flows' parameters that the ``sundown`` command shows in its help.

Prefect-free on purpose: the CLI imports this module at import time (``sundown --help`` must not
pay for importing Prefect), while the flows themselves are imported inside each command's body.
"""

DEFAULT_LEASE_SECONDS = 120
