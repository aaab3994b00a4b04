"""A retirement's result as the tests read it, whatever its certificate says."""

from __future__ import annotations

from flows.decommission import decommission_system
from flows.models import DecommissionParameters, DecommissionResult, Incomplete


def retirement(params: DecommissionParameters) -> DecommissionResult:
    """``decommission_system``'s result, also when its certificate says failed: the flow then
    raises Incomplete after signing and ledgering the certificate (docs/flows.md), and the
    tests read the status from the result it holds."""
    try:
        return decommission_system(params)
    except Incomplete as failed:
        assert failed.result.status == "failed" and "says FAILED" in str(failed), failed
        result: DecommissionResult = failed.result
        return result
