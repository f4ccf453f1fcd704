#!/usr/bin/env python3
"""A stand-in for `curl` against the GitLab API in the pipeline test: the three calls the
pipeline makes, answered from $FAKE_GH_DIR, following the GitLab REST API documents
("Notes API", "Commits API: merge requests associated with a commit", "Job artifacts API:
download the artifacts archive"). Anything else exits 22, as `curl --fail` does on an error.
"""

import json
import os
import shutil
import sys
from pathlib import Path

args = sys.argv[1:]
state = Path(os.environ["FAKE_GH_DIR"])
url = next(a for a in args if a.startswith("http"))
out = args[args.index("-o") + 1] if "-o" in args else None
api = os.environ["CI_API_V4_URL"] + f"/projects/{os.environ['CI_PROJECT_ID']}/"
assert url.startswith(api), url
path = url[len(api) :]
if path.startswith("merge_requests/") and path.endswith("/notes") and "POST" in args:
    iid = path.split("/")[1]
    body = next(a for a in args if a.startswith("body@"))[len("body@") :]
    assert "PRIVATE-TOKEN: " + os.environ["MLSTACK_API_TOKEN"] in args
    shutil.copy(body, state / f"note-{iid}.md")
elif path.startswith("repository/commits/") and path.endswith("/merge_requests") and out:
    shutil.copy(state / "merge_requests.json", out)
elif path.startswith("jobs/artifacts/") and path.endswith("/download?job=plan") and out:
    iid = json.loads((state / "merge_requests.json").read_text())[0]["iid"]
    assert path.split("/")[2] == f"refs%2Fmerge-requests%2F{iid}%2Fhead", path
    shutil.copy(state / "artifacts-plan.zip", out)
else:
    print(f"fake GitLab API: unexpected call {args}", file=sys.stderr)
    sys.exit(22)
