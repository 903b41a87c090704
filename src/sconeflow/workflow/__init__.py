"""The whole Scones Unlimited workflow in one command (``sconeflow demo``), plus ``cleanup`` and ``status``.

The modules call the stages' Python APIs (data, model, endpoint, lambda runtime, gateway, Step Functions,
monitor); nothing here shells out to the CLI.
"""
