"""Property-based requests from the OpenAPI document (schemathesis) against a real uvicorn: no server error."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from campaign import START, campaign_store
from dashboards.serve_thread import serving

from dashboards.research import ResearchSettings, research_router
from dashboards.research.auth import create_token
from ingest import registry as reg

PEPPER = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real server over a small public campaign, and an admin token."""
    con = campaign_store(tmp_path_factory.mktemp("fuzz") / "qsec.duckdb", hours=0.05, public=True)
    reg.register_kit(con, "versailles", "k1", {"kit-01": ["plantower-pms5003t"]})
    reg.assign_kit(con, reg.add_participant(con, "versailles"), "k1", START)
    _, token = create_token(con, PEPPER, name="fuzz", role="admin")
    app = FastAPI(docs_url=None, redoc_url=None)
    app.include_router(research_router(con.cursor, ResearchSettings(token_pepper=PEPPER, token_burst=100_000,
                                                                    token_rate=10_000, export_cost=1)))
    with serving(app) as url:
        yield url, token
    con.close()


def test_no_request_the_schema_allows_makes_the_server_fail(api: tuple[str, str]) -> None:
    """Every operation, a few generated requests each (bounded so the run stays short); 5xx fails."""
    url, token = api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(operation.as_strategy())
        @settings(max_examples=6, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error],
                                   timeout=60)

        try:
            check()
        except Exception as error:  # noqa: BLE001 (collected, reported together below)
            failures.append(f"{operation.method.upper()} {operation.path}: {str(error)[:400]}")
    assert operations >= 30
    assert not failures, "\n".join(failures)
