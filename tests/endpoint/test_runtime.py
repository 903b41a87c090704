"""The serving sessions: small batches on the spinning session, large ones on the quiet one, same math."""

from __future__ import annotations

import numpy as np
import pytest

from sconeflow.endpoint.runtime import load_serving_classifier
from sconeflow.model.artifact import load_classifier

from .conftest import TrainedModel


def _images(model: TrainedModel, n: int) -> np.ndarray:
    import io

    from PIL import Image

    pngs = [png for _, png in model.test_pngs]
    return np.stack(
        [np.asarray(Image.open(io.BytesIO(pngs[i % len(pngs)])).convert("RGB")) for i in range(n)]
    )


def test_small_batches_run_on_the_spinning_session_with_the_same_probabilities(
    trained_model: TrainedModel,
) -> None:
    data = trained_model.artifact.read_bytes()
    serving = load_serving_classifier(data, intra_op_threads=2, spin_max_batch=2)
    assert serving.session_for(1) is serving.session_for(2)
    assert serving.session_for(3) is not serving.session_for(2)
    spinning = (
        serving.session_for(1)
        .get_session_options()
        .get_session_config_entry("session.intra_op.allow_spinning")
    )
    quiet = (
        serving.session_for(64)
        .get_session_options()
        .get_session_config_entry("session.intra_op.allow_spinning")
    )
    assert (spinning, quiet) == ("1", "0")
    reference = load_classifier(data)
    for n in (1, 2, 3, 16):
        images = _images(trained_model, n)
        np.testing.assert_allclose(serving.predict_proba(images), reference.predict_proba(images), atol=1e-5)


@pytest.mark.parametrize(
    ("threads", "allow_spinning", "spin_max_batch"), [(1, False, 2), (2, True, 2), (2, False, 0)]
)
def test_one_session_when_a_second_would_not_help(
    trained_model: TrainedModel, threads: int, allow_spinning: bool, spin_max_batch: int
) -> None:
    serving = load_serving_classifier(
        trained_model.artifact.read_bytes(),
        intra_op_threads=threads,
        allow_spinning=allow_spinning,
        spin_max_batch=spin_max_batch,
    )
    assert serving.session_for(1) is serving.session_for(64)


def _threads(session: object) -> int:
    return session.get_session_options().intra_op_num_threads  # type: ignore[attr-defined]


def test_workers_share_one_single_threaded_session_with_the_same_probabilities(
    trained_model: TrainedModel,
) -> None:
    """Two workers: large batches on one single-threaded session run by both at once; the spinning
    two-thread session only for a small batch while no other call runs."""
    from concurrent.futures import ThreadPoolExecutor

    data = trained_model.artifact.read_bytes()
    serving = load_serving_classifier(data, intra_op_threads=2, spin_max_batch=2, workers=2)
    bulk = serving.session_for(64)
    assert _threads(bulk) == 1
    assert _threads(serving.session_for(1)) == 2
    assert serving.session_for(1, alone=False) is bulk
    reference = load_classifier(data)
    batches = [_images(trained_model, n) for n in (1, 2, 5, 16, 32) * 4]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(serving.predict_proba, batches))
    for images, probabilities in zip(batches, results, strict=True):
        np.testing.assert_allclose(probabilities, reference.predict_proba(images), atol=1e-5)
