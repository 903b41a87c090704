"""sconeflow: the Scones Unlimited ML workflow, locally and AWS-compatible."""

__version__ = "0.1.0"
