"""Property-based run of the JSON API against its own OpenAPI schema (in-process ASGI).

Schemathesis generates valid and invalid requests for every operation; whatever it sends,
the API must never answer 500, and its answers must match the documented schema (status
codes, content types, bodies). Bounded so the whole run stays well under 30 s.
"""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("schemathesis")

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from qpv_geo.settings import Settings
from qpv_geo.web import create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    APP = create_app(Settings.from_env(max_batch_items=20))

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def no_internal_error(ctx, response, case) -> None:
    """No 500 ever. 503 is the documented answer while a service (geocoder, data) is missing,
    and then it must say so in the error format."""
    if response.status_code == 503:
        body = response.json()
        assert body["erreur"] and body["conseil"], body
    elif response.status_code >= 500:
        raise AssertionError(f"{case.operation.label} : {response.status_code} "
                             f"{response.text[:300]}")


@schema.parametrize()
@settings(max_examples=80, deadline=None,
          suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_fails_and_matches_its_schema(case) -> None:
    case.call_and_validate(checks=[no_internal_error, status_code_conformance,
                                   content_type_conformance, response_schema_conformance])
