"""Real-time endpoints: SageMaker's hosting contract, dynamic micro-batching and Model Monitor data capture.

Public entry points: :func:`sconeflow.endpoint.registry.deploy` / ``update`` / ``delete``,
:func:`sconeflow.endpoint.registry.resolve_endpoint_url` (the gateway's InvokeEndpoint forwarding),
``start_all`` / ``stop_all`` (``sconeflow up`` / ``down``).
"""
