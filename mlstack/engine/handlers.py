"""What applying one resource means, per kind, in terms of the backend seam."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from mlstack.engine import address
from mlstack.engine.backend import (
    Backing,
    Context,
    EndpointState,
    Event,
    ModelVersion,
    RunRequest,
    RunResult,
)
from mlstack.engine.desired import DesiredGraph
from mlstack.engine.resources import Action, Change
from mlstack.errors import BackendError, MlstackError
from mlstack.manifest import strategies

if TYPE_CHECKING:
    from mlstack.engine.workspace import Workspace


class Handlers:
    def __init__(self, ws: Workspace, graph: DesiredGraph) -> None:
        self.ws = ws
        self.graph = graph

    def __call__(self, change: Change, ctx: Context) -> Mapping[str, Any] | None:
        backend = self.ws.backend
        if change.action is Action.DESTROY:
            rec = self.ws.state.get(change.address)
            backend.destroy(change.address, change.kind, rec.outputs if rec else {}, ctx)
            return None
        if change.action is Action.REPLACE:
            self._remove_old(change, ctx)
        method = getattr(self, f"_{change.kind}")
        out: Mapping[str, Any] | None = method(change, ctx)
        return out

    def _remove_old(self, change: Change, ctx: Context) -> None:
        """Before a replacement, remove the old resource, on the platform that holds it."""
        rec = self.ws.state.get(change.address)
        if rec is None:
            return
        old_name = str(rec.inputs.get("backend") or self.ws.backend.name)
        old = self.ws.backend if old_name == self.ws.backend.name else self._other(old_name)
        if old is None:
            ctx.emit(
                Event(
                    "log",
                    change.address,
                    f"warning: backend {old_name!r} could not be loaded to remove the old "
                    f"{change.address} there; remove it with that platform's tools",
                )
            )
            return
        old.destroy(change.address, change.kind, rec.outputs, ctx)

    def _other(self, name: str) -> Any:
        """The backend an environment used before its `backend:` changed (its old settings are
        not known any more, so only backends that need none can be loaded)."""
        from mlstack.engine.backend import get_plugin

        try:
            plugin = get_plugin(name)
            project = self.ws.resolved.model_copy(update={"backend": name, "settings": {}})
            return plugin.load(project, self.ws.workdir)
        except Exception:  # noqa: BLE001 - the old platform may be gone; say so, move on
            return None

    # --- kinds ----------------------------------------------------------------------------------
    def _infra(self, change: Change, ctx: Context) -> Mapping[str, Any]:
        assert change.after is not None
        inputs = {k: v for k, v in change.after.items() if k != "backend"}
        return self.ws.backend.provision(inputs, ctx).record()

    def _dataset(self, change: Change, ctx: Context) -> Mapping[str, Any]:
        assert change.after is not None
        return {
            "digest": change.after.get("digest"),
            "size": change.after.get("size"),
            "source": change.after.get("source"),
        }

    def _pipeline(self, change: Change, ctx: Context) -> Mapping[str, Any]:
        compiled = self.graph.compiled
        assert compiled is not None
        ref = self.ws.backend.upsert_pipeline(compiled, ctx)
        return {
            "digest": compiled.digest,
            "pipeline_name": ref.name,
            "location": ref.location,
            "steps": list(ref.steps),
        }

    def _run(self, change: Change, ctx: Context) -> Mapping[str, Any]:
        compiled = self.graph.compiled
        assert compiled is not None and change.after is not None
        stages: Mapping[str, Any] = change.after["stages"]
        reasons: Mapping[str, str] = change.details.get("stages") or {
            n: "requested" for n in stages
        }
        request = RunRequest(
            stages=tuple(reasons),
            reasons=dict(reasons),
            cache_keys={n: s["key"] for n, s in stages.items()},
            data_digest=change.after.get("data_digest"),
        )
        result = self.ws.backend.run_pipeline(compiled, request, ctx)
        if result.status != "succeeded":
            raise BackendError(
                f"pipeline run {result.run_id} {result.status}: {result.detail}",
                hint=f"see the logs: mlstack logs -e {self.ws.env}",
            )
        return asdict(result)

    def _model(self, change: Change, ctx: Context) -> Mapping[str, Any]:
        assert change.after is not None
        if change.after.get("promoted_from"):
            return self._import(ctx)
        run_out = ctx.outputs.get(address.run(self.ws.resolved.project))
        if not run_out:
            raise BackendError(
                "no pipeline run to register a model from",
                hint=f"apply the run first: mlstack apply -e {self.ws.env}",
            )
        run = RunResult(**{k: run_out[k] for k in RunResult.__dataclass_fields__ if k in run_out})
        if not run.model_uri:
            raise BackendError(
                f"run {run.run_id} produced no model",
                hint="add a `builtin/train` stage (and `builtin/register`)",
            )
        mv = self.ws.backend.register(run, ctx)
        for alias in change.after.get("aliases", []):
            self.ws.backend.set_alias(mv.name, alias, mv.version, ctx)
        return asdict(mv) | {"aliases": list(change.after.get("aliases", []))}

    def _import(self, ctx: Context) -> Mapping[str, Any]:
        """A promoted environment's model: the release's artifact in this registry, by digest
        (a backend reuses a version it already holds with that digest)."""
        release = self.graph.release
        assert release is not None
        source = release.source()
        ctx.emit(
            Event(
                "model.imported",
                address.model(release.model),
                f"{release.model} v{release.source_version} ({release.digest[:19]}) "
                f"from {release.source_env}",
            )
        )
        imported = self.ws.backend.import_version(source, ctx)
        if imported.digest != release.digest:
            raise BackendError(
                f"{self.ws.env}'s registry changed the artifact's digest "
                f"({release.digest} → {imported.digest}); refusing to deploy it"
            )
        lineage = {
            "source_env": release.source_env,
            "source_version": release.source_version,
            "source_digest": release.digest,
            **dict(release.lineage),
        }
        imported = replace(imported, lineage=lineage)
        return asdict(imported) | {"aliases": list(imported.aliases)}

    def _endpoint(self, change: Change, ctx: Context) -> Mapping[str, Any]:
        assert change.after is not None
        ws = self.ws
        model_name = str(change.after["model"])
        release = self.graph.release
        if release is not None and release.pinned_source is not None:
            mv = release.source()  # a pin: a version this environment registered itself
        else:
            mv_out = ctx.outputs.get(address.model(model_name))
            if not mv_out:
                raise BackendError(
                    f"no registered version of {model_name!r} to deploy",
                    hint="apply the pipeline first, or promote a model here",
                )
            mv = model_version(mv_out)
        prev_rec = ws.state.get(change.address)
        previous = endpoint_state(prev_rec.outputs) if prev_rec and prev_rec.outputs else None
        held = str((prev_rec.inputs.get("held") or {}).get("version", "")) if prev_rec else ""
        if held and held != mv.version:
            from mlstack.engine.rollout import baseline

            # a newer version replaces a held one: its rollout starts from what served before
            previous = baseline(previous, held)
        if prev_rec is not None and previous is not None and _serves_only(previous, mv):
            # Same version, other settings (gates, strategy, sampling) or processes to bring
            # back: make the endpoint hold what it holds, with no rollout to run.
            d = ws.resolved.deployment
            assert d is not None
            desired = replace(
                previous,
                replicas=d.resources.replicas,
                instance_type=d.resources.instance_type,
                **d.batching_fields(),
            )
            view = ws.backend.deploy(desired, ctx)
            return {
                **prev_rec.outputs,
                "state": asdict(desired),
                "url": view.url or prev_rec.outputs.get("url"),
            }
        if change.details.get("rollout") == AT_ONCE:
            return deploy_at_once(ws, mv, prev_rec.outputs if prev_rec else {}, ctx)
        return deploy_version(ws, mv, previous, ctx, operation="apply")


AT_ONCE = "at once (rollback)"


def deploy_at_once(
    ws: Workspace, mv: ModelVersion, recorded: Mapping[str, Any], ctx: Context
) -> dict[str, Any]:
    """A rollback: all traffic to ``mv`` in one step, no gates (it served before)."""
    d = ws.resolved.deployment
    assert d is not None
    ctx.emit(
        Event("rollout.rollback", address.endpoint(d.endpoint), f"restoring v{mv.version} at once")
    )
    desired = EndpointState(
        name=d.endpoint,
        model=mv.name,
        backings=(Backing(mv.version, mv.uri, mv.digest, 100.0),),
        replicas=d.resources.replicas,
        instance_type=d.resources.instance_type,
        **d.batching_fields(),
    )
    view = ws.backend.deploy(desired, ctx)
    ws.backend.set_alias(mv.name, "champion", mv.version, ctx)
    status = ws.backend.endpoint_status(d.endpoint)
    return {
        **recorded,
        "state": asdict(desired),
        "url": (status.url if status else None) or view.url or recorded.get("url"),
        "champion": mv.version,
        "last_rollout": {
            "outcome": "rolled_back_manually",
            "version": mv.version,
            "from_version": recorded.get("champion"),
        },
    }


def _serves_only(state: EndpointState, mv: ModelVersion) -> bool:
    """The endpoint already gives all its traffic to exactly this artifact."""
    return bool(state.backings) and all(
        b.version == mv.version and b.digest == mv.digest and not b.shadow for b in state.backings
    )


def model_version(out: Mapping[str, Any]) -> ModelVersion:
    fields = ModelVersion.__dataclass_fields__
    data = {k: out[k] for k in fields if k in out}
    data["aliases"] = tuple(data.get("aliases", ()))
    return ModelVersion(**data)


def endpoint_state(out: Mapping[str, Any]) -> EndpointState | None:
    st = out.get("state")
    if not st:
        return None
    return EndpointState(
        name=st["name"],
        model=st["model"],
        backings=tuple(Backing(**b) for b in st["backings"]),
        sticky_key=st.get("sticky_key"),
        replicas=st.get("replicas", 1),
        instance_type=st.get("instance_type"),
        max_batch=st.get("max_batch", 0),
        max_latency=st.get("max_latency", 0.0),
    )


def deploy_version(
    ws: Workspace, mv: ModelVersion, previous: EndpointState | None, ctx: Context, operation: str
) -> dict[str, Any]:
    """Roll ``mv`` out on the environment's endpoint with its strategy and gates.

    On a gate breach the controller has already restored ``previous``; we record why in state
    history and fail the apply, so the next plan offers the rollout again."""
    from mlstack.engine.rollout import run_rollout

    d = ws.resolved.deployment
    assert d is not None
    new = Backing(version=mv.version, uri=mv.uri, digest=mv.digest, weight=100.0)
    result = run_rollout(ws.backend, d, mv.name, new, previous, ctx)
    if result.outcome == "held":
        # The endpoint serves the split it holds: record that (status, and the next rollout
        # resumes from it), and mark its inputs as held, so that the next plan offers the rest
        # (apply/promote resume it) or the way back (rollback aborts it).
        addr = address.endpoint(d.endpoint)
        rec = ws.state.get(addr)
        if rec is not None:
            ws.state.put(
                addr,
                rec.kind,
                {**rec.inputs, "held": {"version": mv.version, "reason": result.reason}},
                {
                    **rec.outputs,
                    "state": asdict(result.state),
                    "last_rollout": result.to_dict(),
                },
                rec.depends_on,
            )
        ws.state.record_history(
            f"{operation}:held",
            "held",
            {
                "endpoint": d.endpoint,
                "version": mv.version,
                "reason": result.reason,
                "rollout": result.to_dict(),
            },
        )
        result.raise_for_outcome()
    if not result.promoted:
        # The endpoint serves `previous` again: keep its recorded inputs (so the next plan
        # offers this rollout again) but record why it was rolled back, for `status`.
        addr = address.endpoint(d.endpoint)
        rec = ws.state.get(addr)
        if rec is not None:
            ws.state.update_outputs(addr, {**rec.outputs, "last_rollout": result.to_dict()})
        ws.state.record_history(
            f"{operation}:rollback",
            "rolled_back",
            {
                "endpoint": d.endpoint,
                "version": mv.version,
                "reason": result.reason,
                "rollout": result.to_dict(),
            },
        )
        result.raise_for_outcome()
    if not result.steps and previous is not None and previous.backings:
        _warn_if_judged_blind(ws, mv, result.started, ctx)
    status = ws.backend.endpoint_status(d.endpoint)
    if result.champion is not None:
        ws.backend.set_alias(mv.name, "champion", result.champion, ctx)
    return {
        "state": asdict(result.state),
        "url": (status.url if status else None)
        or (result.endpoint.url if result.endpoint else None),
        "champion": result.champion,
        "last_rollout": result.to_dict(),
    }


def _warn_if_judged_blind(ws: Workspace, mv: ModelVersion, since: float, ctx: Context) -> None:
    """A rollout the platform ran by itself (no steps of ours) is judged by the platform's
    alarms; when too few requests reached the new version for them to judge it, say so."""
    d = ws.resolved.deployment
    assert d is not None
    if not d.gates or not strategies.judged(d):
        return
    try:
        seen = ws.backend.metrics(d.endpoint, since)
    except MlstackError:
        seen = {}
    got = seen[mv.version].requests if mv.version in seen else 0
    if got >= d.min_requests:
        return
    ctx.emit(
        Event(
            "rollout.warning",
            address.endpoint(d.endpoint),
            f"{ws.backend.name} rolled version {mv.version} out by itself while {got} of the "
            f"{d.min_requests} requests needed reached it: its gates could not be judged "
            f"(a platform-run rollout cannot hold at a step; deployment.on_inconclusive: "
            f"{d.on_inconclusive} is not applied)",
        )
    )


def previous_champion(previous: EndpointState | None) -> str | None:
    if previous is None or not previous.backings:
        return None
    return max(previous.backings, key=lambda b: b.weight).version
