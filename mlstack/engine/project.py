"""The project file and the checks that need no state: what `validate` runs.

Kept apart from the workspace (state, plan, apply) so that `mlstack validate` imports only the
spec layer and the backend descriptors: the CLI's start-up budget is 150 ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import Backend, BackendPlugin, get_plugin
from mlstack.errors import MlstackError, ProblemList, SpecError
from mlstack.manifest.load import Loaded, deep_merge, load, resolve
from mlstack.manifest.source import Source, find_project_file

if TYPE_CHECKING:
    from mlstack.engine.workspace import Workspace
    from mlstack.manifest.models import Deployment, ResolvedProject

STATE_DIR = ".mlstack"


class Project:
    """The project file, loaded once; environments are views of it."""

    def __init__(
        self,
        file: str | None = None,
        variables: Mapping[str, str] | None = None,
        *,
        files: bool = False,
    ) -> None:
        """``files``: also check what the spec names on disk (data, scripts, columns); what
        `validate`, `plan` and `apply` do, but not `destroy` or `status`, which must work
        when the data is gone."""
        self.file = find_project_file(file)
        self.variables = dict(variables or {})
        self.loaded: Loaded = load(
            self.file, self.variables, checks=check_environments, files=files
        )

    @property
    def root(self) -> Path:
        return Path(self.loaded.root)

    @property
    def workdir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def environments(self) -> list[str]:
        return list(self.loaded.project.environments)

    def workspace(self, env: str | None, backend: Backend | None = None) -> Workspace:
        """One environment; ``backend`` replaces the one its spec names (tests inject one)."""
        from mlstack.engine.workspace import Workspace

        return Workspace(self, env or self.default_env(), backend)

    def check_env(self, env: str) -> None:
        """One environment's overrides and backend settings, without opening its state."""
        resolved = resolve(self.loaded, env)
        try:
            plugin = get_plugin(resolved.backend)
        except MlstackError as e:
            loc = self.loaded.source.locate(("environments", env, "backend"))
            raise SpecError(e.problems[0].message, location=loc, hint=e.problems[0].hint) from None
        check_resolved(plugin, env, resolved, self.loaded.source)

    def default_env(self) -> str:
        envs = self.environments
        return "dev" if "dev" in envs else envs[0]

    def validate_all(self) -> list[str]:
        """Check every environment: overrides, backend names and backend settings."""
        problems = ProblemList()
        for env in self.environments:
            try:
                self.check_env(env)
            except SpecError as e:
                problems.items.extend(e.problems)
        problems.raise_if_any(SpecError)
        return self.environments


def check_environments(raw: Any, src: Source, problems: ProblemList) -> None:
    """Backend names and settings of every environment, straight from the file's data, so that
    `validate` reports them together with schema errors elsewhere in the file."""
    envs = raw.get("environments") if isinstance(raw, dict) else None
    if not isinstance(envs, dict):
        return
    from mlstack.manifest.models import Environment

    top = raw.get("deployment")
    top_deploy: dict[str, Any] = top if isinstance(top, dict) else {}
    for name, env in envs.items():
        if not isinstance(env, dict):
            continue
        backend = env.get("backend", "local")
        if not isinstance(backend, str):
            continue
        try:
            plugin = get_plugin(backend)
        except MlstackError as e:
            problems.add(
                e.problems[0].message,
                src.locate(("environments", name, "backend")),
                e.problems[0].hint,
            )
            continue
        settings = {k: v for k, v in env.items() if k not in Environment.model_fields}
        over = env.get("deployment")
        check_backend(
            plugin,
            str(name),
            settings,
            _deployment(top_deploy, over if isinstance(over, dict) else {}),
            src,
            problems,
        )


def _deployment(top: Mapping[str, Any], over: Mapping[str, Any]) -> Deployment | None:
    """The environment's deployment block as the schema reads it; None when it has errors of
    its own (the schema reports those)."""
    from pydantic import ValidationError

    from mlstack.manifest.models import Deployment

    data = deep_merge(dict(top), dict(over))
    if not data:
        return None
    try:
        return Deployment.model_validate(data)
    except ValidationError:
        return None


def check_resolved(
    plugin: BackendPlugin, env: str, resolved: ResolvedProject, source: Source
) -> None:
    """One environment as resolved: backend settings against the backend's own config model
    (no SDK import), its stages against the backend's capabilities, and the policies."""
    from mlstack.engine.policies import check_policies

    problems = ProblemList()
    check_backend(plugin, env, resolved.settings, resolved.deployment, source, problems)
    check_stages(plugin, env, resolved, source, problems)
    check_policies(resolved, source, problems)
    problems.raise_if_any(SpecError)


def check_backend(
    plugin: BackendPlugin,
    env: str,
    settings: Mapping[str, Any],
    deployment: Deployment | None,
    src: Source,
    problems: ProblemList,
) -> None:
    from pydantic import ValidationError

    from mlstack.manifest.models import ENV_KEYS
    from mlstack.manifest.suggest import did_you_mean

    try:
        plugin.config_model.model_validate(dict(settings))
    except ValidationError as e:
        known = [f.alias or n for n, f in plugin.config_model.model_fields.items()]
        for item in e.errors(include_url=False):
            loc = tuple(item["loc"])
            path = ("environments", env, *loc)
            msg = str(item["msg"]).removeprefix("Value error, ")
            key = ".".join(str(p) for p in loc) or "settings"
            if item["type"] == "extra_forbidden":
                problems.add(
                    f"unknown setting {key!r} for backend {plugin.name!r}"
                    f"{did_you_mean(str(loc[-1]), [*known, *ENV_KEYS])}",
                    src.locate(path),
                    f"valid settings: {', '.join(known)}",
                )
            elif item["type"] == "missing":
                problems.add(
                    f"backend {plugin.name!r} needs setting {key!r}",
                    src.locate(path[:-1]),
                    f"add `{key}: ...` to environment {env}",
                )
            else:
                problems.add(f"{key}: {msg}", src.locate(path))
    if deployment is not None:
        for refusal in plugin.capabilities_for(settings).explain_rollout(deployment):
            problems.add(
                f"environment {env!r}: {refusal.message}",
                _locate_deployment(src, env, refusal.path),
                refusal.hint,
            )


def _locate_deployment(src: Source, env: str, path: tuple[str | int, ...]) -> Any:
    """Where ``deployment.<path>`` is written for ``env``: its override, the top-level block,
    or (for a default value) the strategy line that chose it."""
    for candidate in (
        ("environments", env, "deployment", *path),
        ("deployment", *path),
        ("environments", env, "deployment", "strategy"),
        ("deployment", "strategy"),
        ("environments", env, "deployment"),
    ):
        if candidate in src.positions:
            return src.locate(candidate)
    return src.locate(("deployment",))


def check_stages(
    plugin: BackendPlugin, env: str, resolved: Any, src: Source, problems: ProblemList
) -> None:
    """Stage kinds the environment's backend cannot run, said at validate/plan time."""
    if resolved.promote_from is not None:
        return  # this environment does not train
    for i, stage in enumerate(resolved.pipeline.stages):
        why = plugin.capabilities.explain_stage(stage.kind)
        if why:
            problems.add(
                f"stage {stage.name!r} in environment {env!r}: {why}",
                src.locate(("pipeline", "stages", i)),
                f"change the stage, or run environment {env!r} on another backend",
            )
