"""A location record's verification and validation, recorded apart (NIST SP 800-88 Rev. 2),
shared by object-store (:mod:`flows._certify`) and record-store (:mod:`flows._record_certify`)
locations."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sundown.certificate import Validation, ValidationResult, Verification, VerificationResult


class Recheck(Protocol):
    """What a re-listing or re-query found: passed or not, in words, and when."""

    @property
    def passed(self) -> bool: ...

    @property
    def details(self) -> str: ...

    @property
    def verified_at(self) -> datetime: ...


def checked(
    *,
    method: str,
    check: Recheck,
    accepted: bool,
    basis: str,
    outcome: str,
) -> tuple[Verification, Validation]:
    """A location record's ``verification`` (did the re-listing or re-query ``check`` by
    ``method`` pass) and ``validation`` (the outcome accepted or not, and why), recorded apart
    (SP 800-88 Rev. 2)."""
    return (
        Verification(
            method=method,
            result=VerificationResult.PASSED if check.passed else VerificationResult.FAILED,
            details=check.details[:4000],
            verified_at=check.verified_at,
        ),
        Validation(
            result=ValidationResult.ACCEPTED if accepted else ValidationResult.REJECTED,
            basis=basis,
            details=outcome,
        ),
    )
