"""Data staging (ETL) for the CIFAR-100 workflow: download, safe extraction, restricted unpickling,
PNG transformation and loading into the object store, plus synthetic CIFAR-format tarballs for tests."""
