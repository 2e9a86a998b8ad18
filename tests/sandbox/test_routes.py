"""The route table and the token endpoint follow the wire object they are built from."""

from __future__ import annotations

import pytest

from django_mmc import contract
from django_mmc.dialect import DEFAULT_DIALECT, Dialect
from django_mmc.sandbox.oauth import TokenEndpoint
from django_mmc.sandbox.routes import build_routes
from django_mmc.sandbox.state import ApiError


def wire(**changes: str) -> Dialect:
    return DEFAULT_DIALECT.with_overrides(changes)


def test_default_routes_resolve_every_contract_path() -> None:
    routes = build_routes()
    prefix = "/organisations/1001"
    cases = {
        contract.CHANNEL_GROUPS_PATH: ("channel_groups", {}),
        contract.NOTIFICATION_PATH.format(notification_id="5"): (
            "notification",
            {"notification_id": "5"},
        ),
        contract.MESSAGES_PATH.format(agent_id="17", dialogue_id="9") + "/m-1": (
            "message",
            {"agent_id": "17", "dialogue_id": "9", "message_id": "m-1"},
        ),
        contract.FILES_PATH + "/a%2Fb": ("file", {"file_id": "a/b"}),
    }
    for path, (name, params) in cases.items():
        route, found = routes.resolve(prefix + path, "1001")
        assert (route.name, found) == (name, params)
    assert routes["dialogue"].allowed == "GET, PATCH"
    assert routes["files"].allowed == "POST"


def test_routes_follow_the_wire_they_are_built_from() -> None:
    routes = build_routes(
        wire(
            organisation_prefix="/orgs/{organisation_id}/v2",
            notifications_path="/sends",
            notification_path="/sends/{notification_id}",
        )
    )
    route, params = routes.resolve("/orgs/1001/v2/sends/77", "1001")
    assert (route.name, params) == ("notification", {"notification_id": "77"})
    location = routes["notification"].path(notification_id="78")
    root = routes.organisation_url("http://h/", "1001")
    assert root + location == "http://h/orgs/1001/v2/sends/78"
    for unknown in ("/organisations/1001/notifications", "/orgs/1002/v2/sends", "/orgs/1001/v2/x"):
        with pytest.raises(ApiError) as refused:
            routes.resolve(unknown, "1001")
        assert refused.value.status == 404


def test_token_endpoint_reads_the_token_url_template() -> None:
    default = TokenEndpoint.from_wire("/oauth2/v2.0", "b2c_1_login")
    assert (default.path, default.flow_parameter) == ("/oauth2/v2.0/token", "p")
    assert default.target == "/oauth2/v2.0/token?p=b2c_1_login"
    in_path = TokenEndpoint.from_wire(
        "/oauth", "flow1", wire(token_url="{oauth_base_url}/{oauth_flow}/token")
    )
    assert (in_path.path, in_path.flow_parameter) == ("/oauth/flow1/token", None)
