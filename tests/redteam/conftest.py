"""The API's fixtures (app on the `db` engine, ASGI client, keys), shared with tests/api."""

from tests.api.conftest import api, app, issue_key, plain_tracebacks

__all__ = ["api", "app", "issue_key", "plain_tracebacks"]
