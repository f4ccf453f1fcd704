"""builtin/validate: ``data.expectations`` checked on the ingested table.

Every violation is collected and reported at once (which column, which rule, how many rows, a
few example rows); any violation stops the run, so nothing downstream runs and nothing is
registered. Writes ``validation.json``.
"""

from __future__ import annotations

from typing import Any

from mlstack_runtime import expectations as ex
from mlstack_runtime.artifacts import TABLE, VALIDATION_REPORT, read_table, write_json
from mlstack_runtime.errors import StageStopped


def run(job: Any) -> dict[str, Any]:
    df = read_table(job.require(TABLE, "builtin/ingest"))
    rules = dict(job.data.get("expectations") or {})
    table = dict(job.data.get("table") or {})
    problems = ex.check(df, rules, table)
    if problems:
        where = job.data.get("source") or "the data"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        first = str(problems[0]).split("; ")[0]
        raise StageStopped(  # the first column and rule in the headline the progress line shows
            f"data validation failed in {where} ({len(df)} rows): {first}{more}",
            problems,
            hint="fix the data or the expectations in mlstack.yaml (data.expectations)",
        )
    summary = {"rows": int(len(df)), "columns_checked": sorted(rules), "passed": True}
    write_json(job.output / VALIDATION_REPORT, summary)
    print(f"validated {len(df)} rows against {len(rules)} column expectations")
    return summary
