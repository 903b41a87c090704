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


class InvalidEndpointAnswer(EndpointError):
    """The endpoint answered 200 with a body that is not a probability list for its classes."""


class InvocationError(SconeflowError):
    """An InvokeEndpoint failure as the runtime API reports it (status + ``x-amzn-ErrorType``)."""

    status: int = 400
    code: str = "ValidationError"


class ValidationError(InvocationError):
    """A request the runtime API itself refuses: unknown endpoint, bad header, body over 6 MiB."""

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


class ContainerRejected(ModelError):
    """The model container refused the request with a 4xx of its own.

    SageMaker's runtime API does not look inside the body: content type and image checks happen in the
    container, and the client gets a 424 ModelError carrying the container's status and message.
    """

    container_status = 400

    def __init__(self, container_message: str) -> None:
        status = self.container_status
        super().__init__(
            f'Received client error ({status}) from primary with message "{container_message}"',
            original_status=status,
            original_message=container_message,
        )


class UnsupportedContentType(ContainerRejected):
    """The Content-Type is not an image type the model reads (the container's 415)."""

    container_status = 415


class InvalidImage(ContainerRejected):
    """The body is empty, not a PNG/JPEG, corrupt, or too many pixels (the container's 400)."""

    container_status = 400


class NotAcceptable(ContainerRejected):
    """No range of the Accept header admits the model's application/json (the container's 406)."""

    container_status = 406
