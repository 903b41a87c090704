"""The Lambda service's API errors, each a named SconeflowError carrying its AWS code and HTTP status."""

from __future__ import annotations

from sconeflow.errors import SconeflowError


class LambdaError(SconeflowError):
    """Base of the Lambda service's errors (what the Invoke API answers with a non-2xx status)."""

    aws_code: str = "ServiceException"
    http_status: int = 500


class FunctionNotFound(LambdaError):
    """No function of that name (or qualifier) is registered."""

    aws_code = "ResourceNotFoundException"
    http_status = 404


class InvalidRequestContent(LambdaError):
    """The invocation payload is not valid JSON."""

    aws_code = "InvalidRequestContentException"
    http_status = 400


class RequestTooLarge(LambdaError):
    """The invocation payload is over Lambda's limit (6 MB synchronous, 1 MB asynchronous)."""

    aws_code = "RequestTooLargeException"
    http_status = 413


class TooManyRequests(LambdaError):
    """Every worker of the function is busy and none freed up in time."""

    aws_code = "TooManyRequestsException"
    http_status = 429


class InvalidParameterValue(LambdaError):
    """A parameter (name, handler, timeout, memory, environment, ...) is not acceptable."""

    aws_code = "InvalidParameterValueException"
    http_status = 400


class ValidationError(LambdaError):
    """A request value outside the API model's constraints (AWS's ``ValidationException``)."""

    aws_code = "ValidationException"
    http_status = 400


class ResourceConflict(LambdaError):
    """The function (or alias) exists already, or a version is still referenced by an alias."""

    aws_code = "ResourceConflictException"
    http_status = 409


class PreconditionFailed(LambdaError):
    """The RevisionId given does not match the function's (or alias's) current one."""

    aws_code = "PreconditionFailedException"
    http_status = 412


class NotImplementedOperation(LambdaError):
    """An AWS Lambda operation the local service does not implement (S3's ``501 NotImplemented``)."""

    aws_code = "NotImplemented"
    http_status = 501


class WorkerStartFailed(LambdaError):
    """A worker process for the function could not be started (missing code folder, no interpreter, ...)."""

    aws_code = "ServiceException"
    http_status = 500


class PackagingError(SconeflowError):
    """A function's deployment package cannot be built."""
