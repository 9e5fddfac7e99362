"""The MCP gate before traffic (pure planner decisions) and how a failed handshake is classified."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mcp_operator.api.models import McpCheck, McpDeploymentStatus
from mcp_operator.contract import ObservedRevision, Phase
from mcp_operator.reconcile import plan as planning
from mcp_operator.reconcile.desired import Desired
from mcp_operator.verify import Resolver, classify
from tests.unit.test_plan import NOW, Cloud, conditions, desired, intent, observed


def _with_url(cloud: Cloud, want: Desired, number: int, percent: int = 0, phase: Phase = Phase.READY) -> ObservedRevision:
    found = cloud.revision(want, number, phase, percent)
    return ObservedRevision(found.cloud_id, found.key, found.phase, found.percent, url=f"https://{found.cloud_id}.example.io/")


def _rolling(cloud: Cloud) -> tuple[Desired, McpDeploymentStatus, ObservedRevision, ObservedRevision]:
    """Revision 1 serves; revision 2 (the spec's) is ready and has no traffic yet."""
    old, new = desired("img:1"), desired("img:2")
    status = cloud.run(old, intent(cloud, old), observed(_with_url(cloud, old, 1, 100))).status
    status.revisions[0].mcp = McpCheck(result="Passed", url="u", checked_at="t", first_checked_at="t")
    status = cloud.run(new, status, observed(_with_url(cloud, old, 1, 100))).status  # intent of revision 2
    return new, status, _with_url(cloud, old, 1, 100), _with_url(cloud, new, 2)


def _check(result: str, reason: str | None = None, minutes_ago: int = 0) -> McpCheck:
    when = planning.now_iso(NOW - timedelta(minutes=minutes_ago))
    return McpCheck(result=result, url="u", checked_at=when, first_checked_at=when, reason=reason, message="why")


@pytest.mark.parametrize(("check", "expected"), [
    (None, "verify"),                                             # never checked: check it before traffic
    (_check("Passed"), "route"),                                  # passed: traffic moves
    (_check("Failed", "McpUnreachable"), "verify"),               # may still be starting: ask again
    (_check("Failed", "McpUnreachable", minutes_ago=5), "stall"),  # waited past spec.verify.timeoutSeconds
    (_check("Failed", "McpHostRejected"), "stall"),               # waiting will not change a Host guard
    (_check("Failed", "McpToolsMissing"), "stall"),
    (_check("Failed", "McpUnauthorized"), "stall"),
])
def test_traffic_moves_only_after_a_passed_check(cloud: Cloud, check: McpCheck | None, expected: str) -> None:
    want, status, serving, candidate = _rolling(cloud)
    status.revisions[-1].mcp = check
    result = cloud.run(want, status, observed(serving, candidate))
    if expected == "verify":
        assert isinstance(result.action, planning.VerifyMcp)
        assert result.action.url == candidate.url and result.action.number == 2
        assert conditions(result.status)["Reconciling"] == ("True", "VerifyingMcp")
    elif expected == "route":
        assert isinstance(result.action, planning.Route) and dict(result.action.traffic) == {candidate.cloud_id: 100}
    else:
        assert result.action is None
        stalled = next(c for c in result.status.conditions if c.type == "Stalled")
        assert stalled.status == "True" and stalled.reason == (check.reason if check else "")
        assert "keeps serving" in stalled.message
        assert [e[:2] for e in result.events] == [("Warning", stalled.reason)]


def test_a_target_without_revision_urls_moves_traffic_unchecked(cloud: Cloud) -> None:
    want, status, serving, candidate = _rolling(cloud)
    bare = ObservedRevision(candidate.cloud_id, candidate.key, candidate.phase)
    result = cloud.run(want, status, observed(serving, bare))
    assert isinstance(result.action, planning.Route)


def test_the_path_is_appended_and_the_switch_turns_it_off(cloud: Cloud) -> None:
    want, status, serving, candidate = _rolling(cloud)
    pathed = Desired(**{**want.__dict__, "verify": want.verify.model_copy(update={"path": "/mcp"})})
    result = cloud.run(pathed, status, observed(serving, candidate))
    assert isinstance(result.action, planning.VerifyMcp) and result.action.url.endswith(".example.io/mcp")
    off = Desired(**{**want.__dict__, "verify": want.verify.model_copy(update={"enabled": False})})
    assert isinstance(cloud.run(off, status, observed(serving, candidate)).action, planning.Route)


@pytest.mark.parametrize(("refused", "reason", "words"), [
    ([(421, "Invalid Host header")], "McpHostRejected", "allowed_origins"),
    ([(403, "Forbidden: Host header not in allowed origins")], "McpHostRejected", "allowed_origins"),
    ([(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure")],
     "McpUnreachable", "0.0.0.0:$PORT"),
    ([(404, "Not Found")], "McpHandshakeFailed", "spec.verify.path"),
    ([(401, "unauthorized")], "McpUnauthorized", "spec.verify.tokenSecretRef"),
    ([(500, "boom")], "McpHandshakeFailed", "HTTP 500"),
    ([], "McpUnreachable", "within 10s"),
])
def test_a_failed_handshake_names_what_to_change(refused: list[tuple[int, str]], reason: str, words: str) -> None:
    error: BaseException = TimeoutError() if not refused else RuntimeError("Server returned an error response")
    found, message = classify(error, "https://calc--r2.example.io/", 10, refused)
    assert found == reason and words in message


def test_the_resolver_maps_patterns_like_curl_resolve() -> None:
    resolver = Resolver.parse("*.azurecontainerapps.io=127.0.0.1:8443, api.internal=10.0.0.5")
    assert resolver.address_of("calc.x.eastus.azurecontainerapps.io", 443) == ("127.0.0.1", 8443)
    assert resolver.address_of("api.internal", 443) == ("10.0.0.5", 443)
    assert resolver.address_of("example.com", 443) == ("example.com", 443)
    with pytest.raises(ValueError, match="host-pattern=address"):
        Resolver.parse("nonsense")


