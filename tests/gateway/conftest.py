from tests.gateway.support import gateway, runtime  # noqa: F401 - fixtures
