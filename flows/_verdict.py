"""A location record's verification and validation, recorded apart (NIST SP 800-88 Rev. 2),
shared by object-store (:mod:`flows._certify`) and record-store (:mod:`flows._record_certify`)
locations."""

from __future__ import annotations

from datetime import datetime

from sundown.certificate import Validation, ValidationResult, Verification, VerificationResult


def checked(
    *,
    method: str,
    passed: bool,
    details: str,
    at: datetime,
    accepted: bool,
    basis: str,
    outcome: str,
) -> tuple[Verification, Validation]:
    """A location record's ``verification`` (did the re-listing or re-query pass) and
    ``validation`` (the outcome accepted or not, and why), recorded apart (SP 800-88 Rev. 2)."""
    return (
        Verification(
            method=method,
            result=VerificationResult.PASSED if passed else VerificationResult.FAILED,
            details=details[:4000],
            verified_at=at,
        ),
        Validation(
            result=ValidationResult.ACCEPTED if accepted else ValidationResult.REJECTED,
            basis=basis,
            details=outcome,
        ),
    )
