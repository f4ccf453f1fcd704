"""The stages as a KFP v2 pipeline spec for Vertex AI Pipelines, compiled with KFP's own compiler.

Each stage is a container component on Vertex's prebuilt scikit-learn image whose command is the
shared stage runtime's entry point, ``python -m mlstack_runtime STAGE --spec gs://.../STAGE.json
--input UP=gs://... --outputs gs://...``; the runtime reads ``gs://`` paths through Vertex's
Cloud Storage FUSE mount (``/gcs/...``), and finds its own source on that mount too
(``PYTHONPATH``), uploaded by ``upsert_pipeline`` next to the settings files. Settings travel as
files, never as long arguments.

Caching: every stage takes one pipeline parameter, ``key_<stage>``, set to mlstack's cache key
for the stage when a run is submitted, and writes to ``.../outputs/<stage>/<key>/``. Vertex's
step cache is keyed on the component and its inputs, so a stage whose mlstack key is unchanged
is served from Vertex's cache, and its outputs are where downstream stages look for them.

The KFP SDK is imported only here, and only on a compile the cache cannot answer.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mlstack.manifest.dag import toposort
from mlstack_vertex import names

if TYPE_CHECKING:
    from mlstack.manifest.models import ResolvedProject, Stage
    from mlstack_vertex.plugin import VertexConfig

SETTINGS_FORMAT = "mlstack-stage/1"  # the shared runtime's settings file format
RUNTIME_MODULE = "mlstack_runtime"
DATA_PARAM = "data_uri"


def kind_of(stage: Stage) -> str:
    if stage.uses:
        return str(stage.uses).split("/", 1)[-1]
    return "command" if stage.run else "function"


def ancestors(project: ResolvedProject, name: str) -> list[str]:
    """Every stage ``name`` depends on, nearest first (the runtime looks through all of them
    for the files it needs: split reads ingest's table through validate), in
    ``mlstack_runtime.job.ancestors``'s order, the same on every platform."""
    from mlstack_runtime.job import ancestors

    return ancestors([{"name": s.name, "needs": s.needs} for s in project.pipeline.stages], name)


def stage_settings(project: ResolvedProject) -> dict[str, dict[str, Any]]:
    """stage -> the settings file the runtime reads (``--spec``), in the runtime's format."""
    pipeline = project.pipeline.model_dump(mode="json", by_alias=True)
    data = project.data.model_dump(mode="json", by_alias=True) if project.data else None
    model = project.model.model_dump(mode="json", by_alias=True) if project.model else None
    # only a tune stage reads the whole pipeline (to find the train stage it feeds): the others'
    # settings, and so their Vertex cache keys, do not change when another stage does
    return {
        s.name: {
            "format": SETTINGS_FORMAT,
            "stage": s.model_dump(mode="json", by_alias=True),
            "data": data,
            "pipeline": pipeline if kind_of(s) == "tune" else {"stages": []},
            "model": model,
            "inputs": ancestors(project, s.name),
        }
        for s in project.pipeline.stages
    }


def settings_digest(settings: Mapping[str, Any]) -> str:
    raw = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


class Layout:
    """The gs:// places of one environment's pipeline."""

    def __init__(self, project: ResolvedProject, config: VertexConfig) -> None:
        self.bucket = names.bucket_name(project, config)
        self.root = f"gs://{self.bucket}/{names.prefix(project)}"

    @property
    def pipeline_root(self) -> str:
        return f"{self.root}/pipeline_root"

    def settings_file(self, stage: str, digest: str) -> str:
        return f"{self.root}/settings/{stage}/{digest}.json"

    def runtime_dir(self, runtime_digest: str) -> str:
        return f"gs://{self.bucket}/mlstack/runtime/{runtime_digest}"

    def outputs(self, stage: str) -> str:
        return f"{self.root}/outputs/{stage}"

    def data(self, data_digest: str) -> str:
        return f"{self.root}/data/{data_digest}"

    def spec(self, digest: str) -> str:
        return f"{self.root}/pipelines/{digest}.json"


def image(config: VertexConfig) -> str:
    """Vertex's prebuilt scikit-learn training image for the configured version."""
    region = config.region.split("-", 1)[0]
    host = {"europe": "europe", "asia": "asia", "australia": "asia", "me": "europe"}.get(
        region, "us"
    )
    return f"{host}-docker.pkg.dev/vertex-ai/training/sklearn-cpu.{config.sklearn_version}:latest"


def gcs_mount(uri: str) -> str:
    """A gs:// URI as a task sees it through Cloud Storage FUSE."""
    return "/gcs/" + uri.removeprefix("gs://")


def build(project: ResolvedProject, config: VertexConfig, runtime_digest: str) -> dict[str, Any]:
    """The compiled pipeline spec (JSON) for the project's stages."""
    from kfp import compiler, dsl

    layout = Layout(project, config)
    settings = stage_settings(project)
    stages = {s.name: s for s in project.pipeline.stages}
    order = toposort({s.name: s.needs for s in project.pipeline.stages})
    pythonpath = gcs_mount(layout.runtime_dir(runtime_digest))

    def component(stage: Stage) -> Any:
        ups = ancestors(project, stage.name)
        params = ["cache_key", *[f"key_{u}" for u in ups]]
        if not ups:
            params.append(DATA_PARAM)

        def body(*values: str) -> Any:
            kw = dict(zip(params, values, strict=True))
            args: list[Any] = [
                stage.name,
                "--spec",
                layout.settings_file(stage.name, settings_digest(settings[stage.name])),
                "--outputs",
                dsl.ConcatPlaceholder([layout.outputs(stage.name), "/", kw["cache_key"]]),
            ]
            for u in ups:
                args += [
                    "--input",
                    dsl.ConcatPlaceholder([f"{u}={layout.outputs(u)}/", kw[f"key_{u}"]]),
                ]
            if DATA_PARAM in kw:
                args += ["--data", kw[DATA_PARAM]]
            return dsl.ContainerSpec(
                image=image(config), command=["python", "-m", RUNTIME_MODULE], args=args
            )

        _sign(body, params, dsl.ContainerSpec, f"mlstack-{stage.name}")
        return dsl.container_component(body)

    comps = {name: component(stages[name]) for name in order}
    pipeline_params = [f"key_{n}" for n in order] + [DATA_PARAM]

    def pipeline_body(*values: str) -> None:
        kw = dict(zip(pipeline_params, values, strict=True))
        tasks: dict[str, Any] = {}
        for name in order:
            stage = stages[name]
            args = {"cache_key": kw[f"key_{name}"]}
            args.update({f"key_{u}": kw[f"key_{u}"] for u in ancestors(project, name)})
            if not stage.needs:
                args[DATA_PARAM] = kw[DATA_PARAM]
            task = comps[name](**args)
            for u in stage.needs:
                task.after(tasks[u])
            task.set_env_variable("PYTHONPATH", pythonpath)
            for key, value in sorted(stage.env.items()):
                task.set_env_variable(key, value)
            task.set_caching_options(True)
            if stage.retries:
                task.set_retry(num_retries=stage.retries)
            task.set_cpu_limit(_cpus(config.machine_type))
            task.set_display_name(name)
            tasks[name] = task

    _sign(pipeline_body, pipeline_params, None, names.pipeline_name(project))
    pipeline = dsl.pipeline(
        name=names.pipeline_name(project),
        description=f"mlstack pipeline of {project.project} ({project.environment})",
        pipeline_root=layout.pipeline_root,
    )(pipeline_body)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pipeline.json"
        compiler.Compiler().compile(pipeline, str(out))
        spec: dict[str, Any] = json.loads(out.read_text())
    spec.pop("sdkVersion", None)  # the digest follows what runs, not who compiled it
    return {
        "pipeline_spec": spec,
        "settings": settings,
        "runtime_digest": runtime_digest,
        "order": order,
    }


def _cpus(machine_type: str) -> str:
    tail = machine_type.rsplit("-", 1)[-1]
    return tail if tail.isdigit() else "1"


def _sign(fn: Callable[..., Any], params: list[str], returns: Any, name: str) -> None:
    """Give ``fn(*values)`` the named string parameters KFP reads from the signature."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, kind, annotation=str) for p in params],
        return_annotation=returns if returns is not None else inspect.Signature.empty,
    )
    fn.__annotations__ = {p: str for p in params}
    if returns is not None:
        fn.__annotations__["return"] = returns
    fn.__name__ = fn.__qualname__ = name


def digest(definition: Mapping[str, Any]) -> str:
    raw = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
