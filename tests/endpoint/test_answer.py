"""Reading an InvokeEndpoint answer: the class and probability it picks, and malformed answers named."""

from __future__ import annotations

import json

import pytest

from sconeflow.endpoint.answer import best_class

CLASSES = json.dumps(["bicycle", "motorcycle"])


def test_the_most_probable_class_and_its_probability() -> None:
    assert best_class(b"[0.25, 0.75]", CLASSES) == ("motorcycle", 0.75)
    assert best_class(b"[[0.9, 0.1]]", CLASSES) == ("bicycle", 0.9)  # a one-row batch answer
    assert best_class(b"[0.1, 0.5, 0.4]", None) == ("class_1", 0.5)


@pytest.mark.parametrize(
    ("body", "header", "match"),
    [
        (b"<html>oops</html>", CLASSES, "not JSON"),
        (b"\xff\xfe", CLASSES, "not JSON"),
        (b"{}", CLASSES, "not a list of probabilities"),
        (b"[]", CLASSES, "not a list of probabilities"),
        (b'[0.5, "x"]', CLASSES, "not a list of probabilities"),
        (b"[NaN, 0.5]", CLASSES, "not a list of probabilities"),
        (b"[0.2, 0.8]", json.dumps(["only-one"]), "does not name the 2 classes"),
        (b"[0.2, 0.8]", "not json", "does not name the 2 classes"),
    ],
)
def test_a_malformed_answer_says_what_is_wrong(body: bytes, header: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        best_class(body, header)
