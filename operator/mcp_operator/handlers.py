"""kopf glue only: watch McpDeployments, run one reconcile loop per resource, clean up on deletion."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from typing import Any

import kopf

from . import metrics
from .api.models import GROUP, PLURAL, RECONCILE_REQUESTED_AT, VERSION
from .contract import TerminalError
from .controller import CREDENTIALS_FINALIZER, Controller
from .kube import Kube, decode_secret_data, session_for
from .kubeconfig import Login, login
from .scope import Scope
from .settings import Settings, positive_number
from .targets import registry

FINALIZER = f"{GROUP}/cleanup"


class _HandlerNoise(logging.Filter):
    """The wake-up hook runs on every watch event: its success is not news. A deletion that waits for the cloud
    is progress, not an error: kopf reports each wait as a failure, which would also post Warning Events."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "wake_on_spec_change" in message:
            return False
        if "Handler 'clean_up' failed temporarily: " in message:
            record.msg, record.args = "Deletion in progress: %s", (message.split("failed temporarily: ", 1)[1],)
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


logging.getLogger("kopf.objects").addFilter(_HandlerNoise())


started_with: Login | None = None  # set by __main__ after checking the configuration


log = logging.getLogger("mcp_operator.steps")


@kopf.on.login()
async def log_in(**_: Any) -> kopf.AiohttpSession:
    """kopf and our own client authenticate alike (kopf calls this again when the API server answers 401)."""
    global started_with
    found, started_with = started_with, None  # the start-up check's login serves the first one (an exec plugin runs once)
    if found is None:
        found = await asyncio.to_thread(login)
    info = found.info
    session = session_for(info, Settings.from_env().kopf_connections())
    return kopf.AiohttpSession(server=info.server, default_namespace=info.default_namespace, expiration=info.expiration,
                               priority=info.priority, aiohttp_session=session)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    # Our own Events are posted explicitly; kopf turns only its warnings and errors into Events.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 600
    settings.networking.request_timeout = 60
    # A resource's loop is cheap (asyncio); thousands may run in one process.
    settings.batching.worker_limit = None
    # Replicas: kopf pauses every peer of equal priority ("possibly conflicting operators"), so two healthy
    # replicas stalled each other. A random priority per process makes exactly one the leader (the highest)
    # and the others standbys; a short lifetime lets a standby take over soon after the leader dies.
    settings.peering.priority = secrets.randbelow(2 ** 31) + 1
    settings.peering.lifetime = int(positive_number("MCP_PEERING_LIFETIME", 10))
    if not settings.peering.standalone:
        logging.getLogger("mcp_operator").info("peering as %s with priority %d (the highest live priority leads)",
                                               settings.peering.name, settings.peering.priority)
    for noisy in (*registry.quiet_loggers(), "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    operator_settings = Settings.from_env()
    kube, _namespace = await Kube.connect(connections=operator_settings.kube_connections)
    memo.controller = Controller(operator_settings, kube)
    metrics.serve(memo.controller.settings.metrics_port)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller = memo.controller
    await controller.close()
    await controller.kube.close()


def _emitter(body: kopf.Body) -> Any:
    where = f"{body['metadata'].get('namespace')}/{body['metadata'].get('name')}"

    def emit(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message)
        # Every step is an Event and a log line naming the object, for those who read logs rather than Events.
        (log.warning if kind == "Warning" else log.info)("%s: %s: %s", where, reason, message)

    return emit


# An unexpected error (say, the API server refusing a status patch) ends one loop; kopf restarts it after `backoff`.
@functools.cache
def _scope() -> Scope:
    return Scope(Settings.from_env().namespaces)  # __main__ has put the command line's namespaces there


def served(namespace: str | None, **_: Any) -> bool:
    """Whether a resource is in a namespace this operator serves (see scope.py: kopf may watch more)."""
    return _scope().serves(namespace)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0, backoff=5.0,
             when=lambda body, namespace, **_: "deletionTimestamp" not in body["metadata"] and served(namespace))
async def reconcile_loop(stopped: kopf.DaemonStopped, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Reconciles this resource, then sleeps until the delay the pass asked for or a change of its spec."""
    controller: Controller = memo.controller
    memo.wake = asyncio.Event()
    controller.secret_index.wakers[(body["metadata"]["namespace"], body["metadata"]["name"])] = memo.wake.set
    while not stopped:
        async with controller.passes.place():  # the snapshot is taken once it is this resource's turn
            memo.wake.clear()
            memo.seen_generation = body["metadata"].get("generation")
            memo.seen_request = _requested_at(body)
            outcome = await controller.reconcile(_snapshot(body), _emitter(body))
        waits = [asyncio.ensure_future(memo.wake.wait()), asyncio.ensure_future(stopped.wait())]
        try:
            await asyncio.wait(waits, timeout=outcome.requeue_after, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()


@kopf.on.event(GROUP, VERSION, PLURAL, when=served)
async def wake_on_spec_change(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A new spec, or a new value of the reconcile-requested-at annotation (a pass now, not at the next drift check)."""
    wake = getattr(memo, "wake", None)
    if wake is not None and (body["metadata"].get("generation") != getattr(memo, "seen_generation", None)
                             or _requested_at(body) != getattr(memo, "seen_request", None)):
        wake.set()


def _requested_at(body: kopf.Body) -> str | None:
    return (body["metadata"].get("annotations") or {}).get(RECONCILE_REQUESTED_AT)


@kopf.on.delete(GROUP, VERSION, PLURAL, backoff=2.0, when=served)
async def clean_up(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    controller: Controller = memo.controller
    async with controller.passes.place():
        try:
            deletion = await controller.delete(_snapshot(body), _emitter(body))
        except TerminalError as error:  # a person must act (the condition and the Event say how): ask again later
            raise kopf.TemporaryError(error.message, delay=max(30.0, controller.settings.poll_interval)) from error
    if not deletion.done:
        raise kopf.TemporaryError("; ".join(deletion.notes) or deletion.warning or "waiting for cloud deletion",
                                  delay=deletion.retry_after or controller.settings.poll_interval)
    controller.forget(body["metadata"].get("uid", ""), body["metadata"]["namespace"], body["metadata"]["name"])


@kopf.on.event("v1", "secrets", when=served)
async def secret_changed(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Keeps the fingerprints of Secret values (never the values) and wakes the McpDeployments using a changed one."""
    controller: Controller | None = getattr(memo, "controller", None)
    if controller is None:
        return
    meta = body["metadata"]
    # Any Secret of the namespace passes by, binary ones too: they are fingerprinted, never refused.
    data = None if event.get("type") == "DELETED" else decode_secret_data(body.get("data"), errors="replace")
    controller.secret_index.seen(meta["namespace"], meta["name"], data,
                                 protected=CREDENTIALS_FINALIZER in (meta.get("finalizers") or []))


def _snapshot(body: kopf.Body) -> dict[str, Any]:
    """A plain copy of the live body, so one pass sees one consistent version."""
    return {"metadata": dict(body["metadata"]), "spec": dict(body.get("spec", {})), "status": dict(body.get("status", {}))}
