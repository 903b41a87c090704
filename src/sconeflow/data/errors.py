"""Named errors of the data stage (each prints as one line: ``ErrorName: message``)."""

from __future__ import annotations

from sconeflow.errors import SconeflowError


class DataError(SconeflowError):
    """Base of the data stage's errors."""


class DownloadError(DataError):
    """The dataset could not be downloaded (unreachable URL, HTTP error, too many retries)."""


class ChecksumMismatch(DataError):
    """A downloaded or given file does not have the expected checksum."""


class CorruptArchive(DataError):
    """The tarball is truncated, corrupt, or lacks the CIFAR-100 members."""


class UnsafeArchive(DataError):
    """A tarball member would write outside the target folder, or is a link or device."""


class UnsafePickle(DataError):
    """A pickle asks for something a CIFAR-100 file never contains (e.g. a global like ``os.system``)."""


class CorruptDataset(DataError):
    """A CIFAR-100 file has unexpected contents (shapes, types, label ids)."""


class UnreadableImage(CorruptDataset):
    """A prepared image object in the bucket is not a readable image."""


class UnknownClass(DataError):
    """A requested class (or coarse group) is not among the dataset's label names."""


class SourceNotFound(DataError):
    """``--source`` names nothing usable."""


class DatasetNotFound(DataError):
    """No prepared dataset (manifest, classes.json) in the bucket."""


class EmptyClass(DataError):
    """A requested class has no rows in a split, or fewer than two classes were asked for."""
