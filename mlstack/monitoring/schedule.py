"""`mlstack schedule show`: ``monitoring.schedule`` as a crontab line and a CI schedule.

For ``local`` (and any CI runner) the schedule is realised by the machine's cron or the CI's
scheduler running ``mlstack monitor`` (with ``--act`` when ``on_drift: retrain``); the window
``--since`` is the schedule's period when it has a simple one, so consecutive runs look at
consecutive windows. Native platform schedulers are not created yet.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from typing import Any

from mlstack.engine.workspace import Workspace
from mlstack.errors import MlstackError


def period(cron: str) -> str:
    """The interval between runs of a simple cron expression, as a duration; "24h" otherwise."""
    minute, hour, dom, month, dow = cron.split()
    if minute.startswith("*/") and (hour, dom, month, dow) == ("*", "*", "*", "*"):
        return f"{int(minute[2:])}m" if minute[2:].isdigit() else "24h"
    if minute == "*" and (hour, dom, month, dow) == ("*", "*", "*", "*"):
        return "1m"
    if minute.isdigit() and (dom, month, dow) == ("*", "*", "*"):
        if hour == "*":
            return "1h"
        if hour.startswith("*/") and hour[2:].isdigit():
            return f"{int(hour[2:])}h"
        if hour.isdigit():
            return "24h"
    if minute.isdigit() and hour.isdigit() and (dom, month) == ("*", "*") and dow.isdigit():
        return "7d"
    return "24h"


@dataclass(frozen=True)
class Schedule:
    environment: str
    cron: str
    since: str
    command: str
    crontab: str
    github_actions: str
    gitlab_ci: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def show(ws: Workspace) -> Schedule:
    m = ws.resolved.monitoring
    if m is None or m.schedule is None:
        raise MlstackError(
            f"environment {ws.env!r} has no monitoring.schedule",
            hint='add it to mlstack.yaml, e.g. monitoring: {schedule: "0 * * * *"}',
        )
    cron = m.schedule
    since = period(cron)
    act = " --act" if m.drift.on_drift == "retrain" else ""
    command = f"mlstack monitor -e {ws.env} --since {since}{act}"
    root = shlex.quote(str(ws.workdir))
    crontab = f"{cron} cd {root} && {command} >> .mlstack/monitor-{ws.env}.log 2>&1"
    github = (
        "on:\n"
        "  schedule:\n"
        f'    - cron: "{cron}"  # UTC\n'
        "jobs:\n"
        "  monitor:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: pip install mlstack-core\n"
        f"      - run: {command}  # exit 2: drift found\n"
    )
    gitlab = (
        "monitor:\n"
        "  rules:\n"
        '    - if: $CI_PIPELINE_SOURCE == "schedule"\n'
        "  script:\n"
        "    - pip install mlstack-core\n"
        f"    - {command}\n"
        f'# and a pipeline schedule with the cron "{cron}" (CI/CD > Schedules)\n'
    )
    return Schedule(ws.env, cron, since, command, crontab, github, gitlab)
