"""Errors that carry their own HTTP status, rendered as OperationOutcomes by one handler in app.py.

Each error names the field (a JSON pointer-ish path) and the problem, so an integration
engineer reading the 4xx body knows what to fix without our logs.
"""
from __future__ import annotations


class ServiceError(Exception):
    status = 500
    code = "exception"  # FHIR OperationOutcome issue-type

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict:
        """A FHIR OperationOutcome (CRD hook-10): issue code, the problem in words, the field at fault."""
        issue = {"severity": "error", "code": self.code, "diagnostics": self.message}
        if self.field:
            issue["expression"] = [self.field]
        return {"resourceType": "OperationOutcome", "issue": [issue]}


class InvalidRequest(ServiceError):
    """The body is not a valid CDS Hooks request for this service."""
    status = 400
    code = "invalid"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "not-supported"


class RequestTimeout(ServiceError):
    """The request body did not arrive in time (cds_service/buffering.py answers before the app sees it)."""
    status = 408
    code = "timeout"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "too-costly"


class UnknownService(ServiceError):
    status = 404
    code = "not-found"


class DataUnavailable(ServiceError):
    """Data the rules need is neither prefetched nor fetchable (CDS Hooks 2.0: 412)."""
    status = 412
    code = "incomplete"


class ServiceUnavailable(ServiceError):
    """A dependency (the database) did not answer in time: try again later, nothing was acknowledged."""
    status = 503
    code = "transient"

    def __init__(self, message: str, *, field: str | None = None, retry_after: int = 5):
        super().__init__(message, field=field)
        self.retry_after = retry_after


class NotReady(ServiceUnavailable):
    """The service cannot answer: a data file it needs is missing or broken (a broken install, or files
    replaced mid-deploy). A client may retry later, so it gets Retry-After like any other 503."""

    def __init__(self, message: str, *, field: str | None = None, retry_after: int = 30):
        super().__init__(message, field=field, retry_after=retry_after)


class NotAcceptable(ServiceError):
    status = 406
    code = "not-supported"
