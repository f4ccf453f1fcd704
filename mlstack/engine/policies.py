"""Policies: rules in the spec (`policies:`, per environment under `environments.<env>`) that
`validate` and `plan` enforce before anything is applied. A violation names its rule, points at
the setting that breaks it, and says where the rule is declared.

- ``min_approvals: N``        the environment's `approvals:` must be at least N
- ``forbid_strategies: [..]`` deployment strategies the environment must not use
- ``require_gates: [..]``     metrics the deployment's `gates:` must name (e.g. error_rate)
- ``promote_from: ENV``       the environment receives versions only by promotion from ENV
"""

from __future__ import annotations

from mlstack.errors import ProblemList
from mlstack.manifest.models import ResolvedProject
from mlstack.manifest.source import Source


def check_policies(r: ResolvedProject, src: Source, problems: ProblemList) -> None:
    pol, env = r.policies, r.environment
    here = ("environments", env)

    def rule_at(rule: str) -> str:
        for path in ((*here, "policies", rule), ("policies", rule)):
            if path in src.positions:
                return f"declared at {src.locate(path)}"
        return "declared in policies"

    def where(*paths: tuple[str | int, ...]) -> tuple[str | int, ...]:
        return next((p for p in paths if p in src.positions), paths[-1])

    if r.approvals < pol.min_approvals:
        problems.add(
            f"policy min_approvals of environment {env!r}: it needs at least "
            f"{pol.min_approvals} approval(s), `approvals:` is {r.approvals}",
            src.locate(where((*here, "approvals"), here)),
            f"set approvals: {pol.min_approvals} (rule {rule_at('min_approvals')})",
        )
    d = r.deployment
    if d is not None and d.strategy in pol.forbid_strategies:
        problems.add(
            f"policy forbid_strategies of environment {env!r}: strategy {d.strategy!r} is "
            "not allowed",
            src.locate(where((*here, "deployment", "strategy"), ("deployment", "strategy"))),
            f"choose another strategy for {env} (rule {rule_at('forbid_strategies')})",
        )
    missing = [g for g in pol.require_gates if d is None or g not in d.gates]
    if missing:
        problems.add(
            f"policy require_gates of environment {env!r}: the deployment has no "
            f"{', '.join(missing)} gate",
            src.locate(where((*here, "deployment", "gates"), ("deployment", "gates"), here)),
            f'add e.g. {missing[0]}: "< 1%" under deployment.gates '
            f"(rule {rule_at('require_gates')})",
        )
    if pol.promote_from is not None and r.promote_from != pol.promote_from:
        got = f"promote_from is {r.promote_from!r}" if r.promote_from else "it trains its own"
        problems.add(
            f"policy promote_from of environment {env!r}: it may only receive versions "
            f"promoted from {pol.promote_from!r}, but {got}",
            src.locate(where((*here, "promote_from"), here)),
            f"set promote_from: {pol.promote_from} (rule {rule_at('promote_from')})",
        )
