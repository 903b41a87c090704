"""S3's error: a code, a message, an HTTP status and the extra elements of its XML error document."""

from __future__ import annotations


class S3Error(Exception):
    def __init__(self, code: str, message: str, status: int, **extra: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra
