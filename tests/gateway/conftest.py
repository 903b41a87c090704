from tests.gateway.support import gateway, lam, runtime  # noqa: F401 - fixtures
