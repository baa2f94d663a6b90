"""Property-based API tests: schemathesis over the OpenAPI schema, against a real server.

Every operation gets generated requests, valid and invalid; none may get a 5xx, and every
response must match the schema. (The schemathesis pytest plugin does not support pytest 9
yet, so the operations are driven with hypothesis directly.)
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance


def test_no_server_errors_and_responses_match_the_schema(server) -> None:
    base, _ = server
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /v1/predict",
        "POST /v1/trace",
        "POST /v2/models/{name}/infer",
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            response = case.call(timeout=30)
            assert response.status_code < 500, (
                f"{case.method} {case.path}: {response.status_code} {response.text}"
            )
            # excluded: an OIP request whose shape disagrees with its data is valid by the schema
            # (JSON Schema cannot relate two fields) yet rightly refused with a 422
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()
