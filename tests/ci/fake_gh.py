#!/usr/bin/env python3
"""A stand-in for the GitHub CLI in the workflow test: the four calls the workflow makes.

- ``gh pr comment N --body-file F``: keeps F as the pull request's comment ($FAKE_GH_DIR)
- ``gh api repos/R/commits/SHA/pulls --jq ...``: the reviewed pull request's head commit
- ``gh run list ... --commit SHA``: the id of the run that planned it
- ``gh api repos/R/actions/runs/ID/approvals --jq FILTER``: the approver of the environment
  FILTER names ($FAKE_GH_APPROVER_<ENV>); no approver prints ``null``, as jq would
Anything else exits 2, so a workflow change the test does not know about fails loudly.
"""

import os
import shutil
import sys
from pathlib import Path

args = sys.argv[1:]
state = Path(os.environ["FAKE_GH_DIR"])
if args[:2] == ["pr", "comment"]:
    body = args[args.index("--body-file") + 1]
    shutil.copy(body, state / f"comment-{args[2]}.md")
elif args[:1] == ["api"] and args[1].endswith("/pulls"):
    print((state / "pr_head_sha").read_text().strip())
elif args[:2] == ["run", "list"]:
    sha = args[args.index("--commit") + 1]
    print((state / f"run-of-{sha}").read_text().strip())
elif args[:1] == ["api"] and args[1].endswith("/approvals"):
    jq = args[args.index("--jq") + 1]
    env = next(e for e in ("staging", "prod") if f'"{e}"' in jq)
    print(os.environ.get(f"FAKE_GH_APPROVER_{env.upper()}", "null"))
else:
    print(f"fake gh: unexpected call {args}", file=sys.stderr)
    sys.exit(2)
