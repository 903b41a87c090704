"""Parse an ASL definition once into typed components (after validating it)."""

from __future__ import annotations

from sconeflow.stepfunctions.definition import StateMachine


def parse_definition(definition: str | dict) -> StateMachine:
    """Validate then parse; raises InvalidDefinition (with ``.diagnostics``) when invalid."""
    raise NotImplementedError
