"""Training, evaluation and the safe ONNX model artifact (issue 3).

Light to import: ``sconeflow.model.artifact`` (serving) never imports torch; ``train`` and ``net`` do.
"""
