"""The intrinsic functions' documented limits and Base64 semantics, run through the real engine.

AWS documents: States.Base64Encode/Base64Decode take a string of up to 10,000 characters and use MIME
Base64 (RFC 2045: characters outside the alphabet are ignored, padding may be left out); States.Hash's
stringified data is at most 10,000 characters; States.ArrayRange returns at most 1000 items. Breaking a
limit is ``States.IntrinsicFailure``.
"""

from __future__ import annotations

import pytest

from sconeflow.stepfunctions.engine import run_execution
from sconeflow.stepfunctions.parser import parse_definition

from .engine_helpers import CONTEXT, Functions, RecordingClock, output, run


def _call(expression: str, data: object = None):
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"r.$": expression}, "End": True}},
    }
    return run(definition, {} if data is None else data)


def _value(expression: str, data: object = None) -> object:
    result = _call(expression, data)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return output(result)["r"]


def _failure(expression: str, data: object = None) -> str:
    result = _call(expression, data)
    assert (result.status, result.error) == ("FAILED", "States.IntrinsicFailure")
    return result.cause


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("RGF0YSB0byBlbmNvZGU=", "Data to encode"),  # the documented example
        ("", ""),  # recorded on AWS (conformance corpus)
        ("YQ", "a"),  # padding left out
        ("YWI", "ab"),
        ("YW Jj\r\nZA==", "abcd"),  # MIME: line breaks and spaces are ignored
        ("!!!", ""),  # MIME: characters outside the alphabet are ignored; nothing is left
        ("/w==", "\ufffd"),  # not UTF-8: a replacement character, as Java's String(bytes, UTF_8)
    ],
)
def test_base64_decode_is_mime_base64(encoded: str, decoded: str) -> None:
    assert _value("States.Base64Decode($.s)", {"s": encoded}) == decoded


@pytest.mark.parametrize("encoded", ["a", "!a!", "YWJjZ", "=YQ", "YQ=", "YQ=a", "YQ==YQ"])
def test_base64_decode_of_what_no_decoder_can_read_is_an_intrinsic_failure(encoded: str) -> None:
    cause = _failure("States.Base64Decode($.s)", {"s": encoded})
    assert "The input of States.Base64Decode is not valid Base64" in cause


@pytest.mark.parametrize("function", ["Base64Encode", "Base64Decode"])
def test_base64_input_is_at_most_10000_characters(function: str) -> None:
    assert isinstance(_value(f"States.{function}($.s)", {"s": "A" * 10_000}), str)
    cause = _failure(f"States.{function}($.s)", {"s": "A" * 10_001})
    assert f"States.{function} must be at most 10000 characters, but it has 10001" in cause
    # Java counts UTF-16 code units: a character beyond U+FFFF counts twice
    _failure(f"States.{function}($.s)", {"s": "A" * 9_999 + "\U0001f600"})


def test_hash_data_is_at_most_10000_characters_once_stringified() -> None:
    assert len(_value("States.Hash($.s, 'SHA-256')", {"s": "a" * 10_000})) == 64
    assert "States.Hash must be at most 10000 characters" in _failure(
        "States.Hash($.s, 'SHA-256')", {"s": "a" * 10_001}
    )
    # a non-string is hashed as its JSON text, and that text is what counts
    _failure("States.Hash($.o, 'MD5')", {"o": ["a" * 5_000, "b" * 5_000]})


def test_array_range_is_refused_before_it_is_built() -> None:
    assert len(_value("States.ArrayRange(1, 1000, 1)")) == 1000
    assert "more than 1000 items" in _failure("States.ArrayRange(1, 1001, 1)")
    # 2^40 items would need terabytes if it were built first
    assert "more than 1000 items" in _failure("States.ArrayRange(0, 1099511627776, 1)")


def test_string_to_json_refuses_a_number_a_float_cannot_hold() -> None:
    assert "too large for a 64-bit floating-point value" in _failure("States.StringToJson('[1e999]')")
    assert _value("States.StringToJson('[1e308, 12345678901234567890123]')") == [
        1e308,
        12345678901234567890123,
    ]


def test_engine_input_with_a_number_a_float_cannot_hold_fails_instead_of_writing_infinity() -> None:
    machine = parse_definition('{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}')
    result = run_execution(machine, "[1e999]", CONTEXT, Functions(), clock=RecordingClock())
    assert (result.status, result.error, result.output) == ("FAILED", "States.Runtime", None)
