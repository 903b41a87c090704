"""Named errors of the endpoint stage.

Two families: management errors (CLI / registry, printed as ``Name: message``) and invocation errors
(the SageMaker Runtime API's wire errors, each with its HTTP status and ``x-amzn-ErrorType`` code).
"""

from __future__ import annotations

from sconeflow.errors import SconeflowError


class EndpointError(SconeflowError):
    """Base of the endpoint stage's management errors."""


class EndpointNotFound(EndpointError):
    """No endpoint with that name in this home."""


class EndpointNotInService(EndpointError):
    """The endpoint exists but cannot take traffic (creating, failed, deleting, or its server is down)."""


class EndpointAlreadyExists(EndpointError):
    """An endpoint with that name exists already."""


class InvalidEndpointName(EndpointError):
    """The name breaks SageMaker's endpoint naming rule."""


class InvalidCaptureConfig(EndpointError):
    """The data-capture settings are out of range."""


class EndpointCreationFailed(EndpointError):
    """The endpoint server did not come up (the model could not be loaded, or the process died)."""


class EndpointUpdateFailed(EndpointError):
    """The new model could not be loaded; the endpoint keeps serving the previous one."""


class ModelLoadError(EndpointError):
    """The model artifact cannot be loaded."""


class InvocationError(SconeflowError):
    """An InvokeEndpoint failure as the runtime API reports it (status + ``x-amzn-ErrorType``)."""

    status: int = 400
    code: str = "ValidationError"


class ValidationError(InvocationError):
    """Bad request: content type, empty, undecodable, too large, or a decompression bomb."""

    status = 400
    code = "ValidationError"


class ThrottlingException(InvocationError):
    """The endpoint's request queue is full; retry later."""

    status = 429
    code = "ThrottlingException"


class ModelError(InvocationError):
    """The model failed on a well-formed request (SageMaker: 424 with the container's status)."""

    status = 424
    code = "ModelError"

    def __init__(self, message: str, original_status: int = 500, original_message: str = "") -> None:
        super().__init__(message)
        self.original_status = original_status
        self.original_message = original_message or message
