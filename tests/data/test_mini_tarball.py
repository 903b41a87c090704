"""The shared mini tarball (every real bicycle and motorcycle image of CIFAR-100 + distractors)."""

from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np
from PIL import Image

from sconeflow.data.prepare import prepare_dataset


def test_mini_tarball_gives_exactly_the_real_images_pixel_for_pixel(settings, store, mini_tarball):
    report = prepare_dataset(settings, source=mini_tarball)
    assert report.counts == {
        "train": {"bicycle": 500, "motorcycle": 500},
        "test": {"bicycle": 100, "motorcycle": 100},
    }
    assert len(list(store.iter_objects("sconeflow-default", "train/"))) == 1000
    assert len(list(store.iter_objects("sconeflow-default", "test/"))) == 200
    with tarfile.open(mini_tarball) as tar:
        for split in ("train", "test"):
            raw = pickle.loads(tar.extractfile(f"cifar-100-python/{split}").read(), encoding="bytes")
            manifest = store.get_object("sconeflow-default", f"{split}.lst").decode().splitlines()
            by_name = {line.split("\t")[2]: int(line.split("\t")[1]) for line in manifest}
            checked = 0
            for row, fine, name in zip(raw[b"data"], raw[b"fine_labels"], raw[b"filenames"], strict=True):
                if fine not in (8, 48):
                    assert name.decode() not in by_name
                    continue
                png = store.get_object("sconeflow-default", f"{split}/{name.decode()}")
                pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
                # CIFAR row: 1024 red, 1024 green, 1024 blue values, each plane row-major 32x32
                assert np.array_equal(pixels[..., 0].ravel(), row[:1024])
                assert np.array_equal(pixels[..., 1].ravel(), row[1024:2048])
                assert np.array_equal(pixels[..., 2].ravel(), row[2048:])
                assert by_name[name.decode()] == (0 if fine == 8 else 1)
                checked += 1
            assert checked == len(manifest) == (1000 if split == "train" else 200)
    again = prepare_dataset(settings, source=mini_tarball)
    assert again.written == 0 and again.unchanged == 1203
