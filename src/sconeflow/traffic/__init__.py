"""Synthetic traffic for the endpoint and the workflow (stretch goal 3): ``sconeflow traffic``.

``shifts`` holds reusable distribution shifts of uint8 NHWC images; ``generator`` draws inputs from the
prepared test split, optionally shifted, and sends them at a steady rate (or as a burst) to an endpoint
through the SageMaker Runtime API, or as Step Functions executions.
"""
