"""Property-based requests generated from the service's own OpenAPI schema (schemathesis):
whatever the body, the service never answers 5xx (but the documented 501 of /v1/search on an
embedded index)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.integration

EXAMPLES = 30  # per operation


def test_no_server_errors(serve: Callable[..., str]) -> None:
    # Small limits so that generated bodies also reach the limit checks.
    url = serve(max_snippets=4, max_snippet_chars=2_000, max_body_bytes=20_000)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {"/v1/check", "/v1/search", "/overlap", "/healthz"}
    calls: dict[str, int] = {}
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,  # the same examples on every run: a failure is reproducible
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            path = case.operation.path
            calls[path] = calls.get(path, 0) + 1
            response = case.call()
            if path == "/v1/search":  # by design on the embedded store (tests/elastic: 200)
                assert response.status_code in (422, 501), response.text
            else:
                case.validate_response(response, checks=[not_a_server_error])

        run()
    # /healthz takes no input: one example is all there is.
    assert all(calls[p] >= 10 for p in ("/v1/check", "/overlap", "/v1/search")), calls
