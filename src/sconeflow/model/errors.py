"""Named errors of the training stage (each prints as one line: ``ErrorName: message``)."""

from __future__ import annotations

from sconeflow.errors import SconeflowError


class ModelError(SconeflowError):
    """Base of the training stage's errors."""


class EmptySplit(ModelError):
    """The split holds no images."""


class SingleClassSplit(ModelError):
    """The training split holds images of fewer than two classes."""


class CorruptImage(ModelError):
    """An image in the bucket cannot be decoded as the expected 32x32 RGB PNG."""


class ManifestMissing(ModelError):
    """The split's ``.lst`` manifest or ``classes.json`` is not in the bucket."""


class InvalidManifest(ModelError):
    """A manifest line or ``classes.json`` is malformed."""


class InvalidHyperparameter(ModelError):
    """A training hyperparameter is out of range or inconsistent with the data."""


class InvalidModelArtifact(ModelError):
    """A model.tar.gz is not a valid sconeflow artifact (members, model.json, or the ONNX graph)."""


class ModelNotFound(ModelError):
    """The model reference names no training job, file or store object."""


class InvalidTrainingJobName(ModelError):
    """A training-job name breaks SageMaker's rule: 1-63 of a-z A-Z 0-9 and inner hyphens."""


class ResourceInUse(ModelError):
    """A training job of that name already exists (SageMaker's CreateTrainingJob error of the same name)."""


class TrainingDiverged(ModelError):
    """The training loss became NaN or infinite (typically a learning rate far too high): no model."""


class TrainingJobNotFound(ModelError):
    """No training job has that name."""


class TrainingStopped(ModelError):
    """The training job was interrupted (Ctrl-C); it is recorded as Stopped."""

    exit_code = 130


class ClassMismatch(ModelError):
    """The model's classes are not the dataset's classes (names or order)."""


class InvalidImage(ModelError):
    """An image given for prediction cannot be decoded."""


class QuantizationFailed(ModelError):
    """The exported graph could not be quantized to int8 (``--quantize int8``)."""
