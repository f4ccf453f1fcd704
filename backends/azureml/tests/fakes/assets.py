"""The fake's datastore and code routes, over a real blob container in Azurite.

Follows, as facts, Microsoft's "Machine Learning Services REST API" pages "Datastores - Get"
(an ``AzureBlob`` datastore: ``accountName``, ``containerName``, ``endpoint``, ``protocol``),
"Datastores - List Secrets" (``secretsType: AccountKey``, ``key``), "Code Versions - Create Or
Update / Get" (body checked with the SDK's generated ``CodeVersion`` model; a version is
immutable: 409 on another ``codeUri``) and "Azure Machine Learning datastore URIs"
(``azureml://datastores/<name>/paths/<path>``, short or with subscription/resource group/
workspace). A code version's ``codeUri`` must name a folder of the datastore's container that
holds files, as the service finds the code there when a job or deployment uses it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DATASTORE = "workspaceblobstore"
ACCOUNT = "devstoreaccount1"
# Azurite's documented development account key (public, not a secret)
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_DATASTORE_PATH = re.compile(r"/datastores/([^/]+)/paths/(.*)$")
_WORKSPACE = re.compile(r"/workspaces/([^/]+)", re.I)


def workspace_of(text: str, default: str = "") -> str:
    """The workspace an ARM id or long-form datastore URI names (else ``default``)."""
    m = _WORKSPACE.search(text)
    return m.group(1) if m else default


def datastore_path(uri: str) -> str:
    """The blob path of an ``azureml://...datastores/workspaceblobstore/paths/...`` URI."""
    from .arm import ArmError

    m = _DATASTORE_PATH.search(uri)
    if not uri.startswith("azureml://") or not m:
        raise ArmError(400, "UserError", f"{uri!r} is not a datastore URI.")
    if m.group(1) != DATASTORE:
        raise ArmError(404, "UserError", f"Datastore {m.group(1)!r} was not found.")
    return m.group(2).strip("/")


def download(container: Any, prefix: str, into: Path) -> int:
    """Every blob under ``prefix/`` into ``into`` (relative paths kept); how many."""
    n = 0
    for blob in container.list_blobs(name_starts_with=prefix.rstrip("/") + "/"):
        rel = blob.name[len(prefix.rstrip("/")) + 1 :]
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(container.download_blob(blob.name).readall())
        n += 1
    return n


def download_file(container: Any, path: str, into: Path) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    from .arm import ArmError

    try:
        data = container.download_blob(path).readall()
    except ResourceNotFoundError:
        raise ArmError(400, "UserError", f"{path} was not found in the datastore.") from None
    into.parent.mkdir(parents=True, exist_ok=True)
    into.write_bytes(data)


def upload(container: Any, folder: Path, prefix: str) -> None:
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            rel = f.relative_to(folder).as_posix()
            container.upload_blob(f"{prefix.rstrip('/')}/{rel}", f.read_bytes(), overwrite=True)


def code_prefix(fake: Any, code_uri: str, workspace: str) -> str:
    """The blob folder a ``codeUri`` (``<account URL>/<container>/<path>``) names."""
    from .arm import ArmError

    marker = f"/{fake.blobs(workspace).container_name}/"
    if marker not in code_uri:
        raise ArmError(400, "UserError", f"codeUri {code_uri!r} is not in the workspace's storage.")
    return code_uri.split(marker, 1)[1].strip("/")


def datastores(
    fake: Any, method: str, prefix: str, parts: list[str], body: Any
) -> tuple[int, dict[str, str], Any]:
    from .arm import ArmError

    if not parts or parts[0] != DATASTORE or len(parts) > 2:
        raise ArmError(404, "ResourceNotFound", f"datastores/{'/'.join(parts)} was not found.")
    if len(parts) == 2:
        if parts[1] != "listSecrets" or method != "POST":
            raise ArmError(404, "NotFound", f"no route for {method} datastores/{parts[1]}")
        return 200, {}, {"secretsType": "AccountKey", "key": ACCOUNT_KEY}
    if method != "GET":
        raise ArmError(405, "MethodNotAllowed", method)
    return (
        200,
        {},
        {
            "id": f"{prefix}/datastores/{DATASTORE}",
            "name": DATASTORE,
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": ACCOUNT,
                "containerName": fake.blobs(workspace_of(prefix)).container_name,
                "endpoint": "core.windows.net",
                "protocol": "https",
                "isDefault": True,
                "credentials": {"credentialsType": "AccountKey"},
            },
        },
    )


def codes(
    fake: Any, method: str, prefix: str, parts: list[str], body: Any
) -> tuple[int, dict[str, str], Any]:
    from azure.ai.ml._restclient.arm_ml_service import models

    from .arm import ArmError

    if len(parts) != 3 or parts[1] != "versions":
        raise ArmError(404, "NotFound", f"no route for {method} codes/{'/'.join(parts)}")
    ws = workspace_of(prefix)
    key = (ws, parts[0], parts[2])
    table = fake.codes
    if method == "GET":
        return 200, {}, fake._existing(table, key, f"codes/{parts[0]}/versions")
    if method != "PUT":
        raise ArmError(405, "MethodNotAllowed", method)
    fake._shape(models.CodeVersion, body)
    uri = str(body["properties"].get("codeUri") or "")
    old = table.get(key)
    if old is not None and old["properties"].get("codeUri") != uri:
        raise ArmError(
            409, "Conflict", f"Code {key[1]}:{key[2]} exists with another codeUri; immutable."
        )
    folder = code_prefix(fake, uri, ws)
    if not any(True for _ in fake.blobs(ws).list_blobs(name_starts_with=folder + "/")):
        raise ArmError(400, "UserError", f"codeUri {uri!r} holds no files.")
    res = {
        "id": f"{prefix}/codes/{key[1]}/versions/{key[2]}",
        "name": key[2],
        "type": "Microsoft.MachineLearningServices/workspaces/codes/versions",
        "properties": {**body["properties"], "provisioningState": "Succeeded"},
    }
    table[key] = res
    return (200 if old else 201), {}, res


def code_of(fake: Any, code_id: str) -> dict[str, Any]:
    """The registered code version an ARM id names (400 when it is not registered)."""
    from .arm import ArmError

    m = re.search(r"/codes/([^/]+)/versions/([^/]+)$", code_id)
    key = (workspace_of(code_id), *m.groups()) if m else None
    if key is None or key not in fake.codes:
        raise ArmError(400, "UserError", f"Code {code_id!r} is not a registered code version.")
    found: dict[str, Any] = fake.codes[key]
    return found
