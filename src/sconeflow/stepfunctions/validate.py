"""Static validation of ASL definitions, with diagnostics shaped like ValidateStateMachineDefinition."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "ERROR" | "WARNING"
    code: str  # e.g. "SCHEMA_VALIDATION_FAILED", "INVALID_JSON_DESCRIPTION"
    message: str
    location: str | None = None  # e.g. "/States/Classify/Next"

    def to_api(self) -> dict[str, str]:
        out = {"severity": self.severity, "code": self.code, "message": self.message}
        if self.location is not None:
            out["location"] = self.location
        return out


@dataclass(frozen=True)
class ValidationResult:
    result: str  # "OK" | "FAIL"
    diagnostics: list[Diagnostic] = field(default_factory=list)
    truncated: bool = False

    def to_api(self) -> dict:
        return {
            "result": self.result,
            "diagnostics": [d.to_api() for d in self.diagnostics],
            "truncated": self.truncated,
        }


def validate_definition(
    definition: str,
    *,
    state_machine_type: str = "STANDARD",
    severity: str = "ERROR",
    max_results: int = 100,
) -> ValidationResult:
    """Check a definition (JSON text) without running it."""
    raise NotImplementedError
