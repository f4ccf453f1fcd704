"""Files in the workspace's default blob datastore, addressed as Azure ML does
(``azureml://datastores/workspaceblobstore/paths/<path>``): the data and stage settings a run
needs, the stage outputs it leaves (the model among them), and the code asset.

Blobs are read and written with azure-storage-blob on the datastore's container
(``Platform.blobs``); code versions are registered with REST "Code Versions - Create Or Update".
"""

from __future__ import annotations

import re
from typing import Any

from mlstack.engine.backend import Context, Event
from mlstack.engine.digest import tree_digest
from mlstack.errors import BackendError
from mlstack_azureml import code_asset
from mlstack_azureml.azure_names import DATASTORE
from mlstack_azureml.platform import Platform

PREFIX = f"azureml://datastores/{DATASTORE}/paths/"
CODE_API = "2024-10-01"


_LONG = re.compile(
    r"^azureml://subscriptions/([^/]+)/resourcegroups/([^/]+)/workspaces/([^/]+)/datastores/",
    re.I,
)


def uri(path: str) -> str:
    return PREFIX + path.strip("/")


def long_uri(p: Platform, datastore_uri: str) -> str:
    """The long form, naming the workspace (``azureml://subscriptions/S/resourcegroups/RG/
    workspaces/W/datastores/D/paths/P``): what a model version records, so another workspace
    knows whose datastore holds the files."""
    c = p.config
    return (
        f"azureml://subscriptions/{c.subscription_id}/resourcegroups/{c.resource_group}/"
        f"workspaces/{c.workspace}/datastores/{DATASTORE}/paths/{path_of(datastore_uri)}"
    )


def workspace_id_of(datastore_uri: str) -> str | None:
    """The ARM id of the workspace a long-form URI names (None for the short form)."""
    m = _LONG.match(datastore_uri)
    if not m:
        return None
    sub, group, ws = m.groups()
    return (
        f"/subscriptions/{sub}/resourceGroups/{group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
    )


def path_of(datastore_uri: str) -> str:
    """The blob path of a datastore URI (short form, or the long form the SDK writes back)."""
    marker = f"/datastores/{DATASTORE}/paths/"
    if marker not in datastore_uri:
        raise BackendError(
            f"{datastore_uri!r} is not in the workspace's datastore {DATASTORE}",
            hint="mlstack reads models and stage outputs from the default blob datastore",
        )
    return datastore_uri.split(marker, 1)[1].strip("/")


def _call(doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    from azure.core.exceptions import AzureError

    from mlstack_azureml.azure import arm_error

    try:
        return fn(*args, **kwargs)
    except AzureError as e:
        raise arm_error(e, doing) from None


def read_tree(p: Platform, datastore_uri: str, container: Any = None) -> dict[str, bytes]:
    """Every file under a folder, by path relative to it (empty when there is none); from
    ``container`` (another workspace's datastore) when given."""
    blobs_of = container if container is not None else p.blobs
    folder = path_of(datastore_uri) + "/"
    blobs = _call(f"listing {datastore_uri}", lambda: list(blobs_of.list_blobs(folder)))
    return {
        b.name[len(folder) :]: _call(
            f"reading {b.name}", lambda n=b.name: blobs_of.download_blob(n).readall()
        )
        for b in blobs
    }


def container_of(p: Platform, workspace_id: str) -> Any:
    """The default datastore's container of another workspace (same credential)."""
    from mlstack_azureml.azure import datastore_container

    return datastore_container(p.arm, workspace_id, DATASTORE)


def read_file(p: Platform, datastore_uri: str) -> bytes:
    name = path_of(datastore_uri)
    data: bytes = _call(f"reading {datastore_uri}", lambda: p.blobs.download_blob(name).readall())
    return data


def digest_of(p: Platform, datastore_uri: str) -> str | None:
    """The artifact tree digest of a folder (``mlstack.engine.digest.tree_digest``)."""
    files = read_tree(p, datastore_uri)
    return tree_digest(files) if files else None


def exists(p: Platform, datastore_uri: str) -> bool:
    return bool(
        _call(f"reading {datastore_uri}", p.blobs.get_blob_client(path_of(datastore_uri)).exists)
    )


def write_tree(p: Platform, datastore_uri: str, files: dict[str, bytes]) -> None:
    folder = path_of(datastore_uri)
    for rel, data in sorted(files.items()):
        _call(
            f"writing {folder}/{rel}", p.blobs.upload_blob, f"{folder}/{rel}", data, overwrite=True
        )


def ensure_code(p: Platform, ctx: Context) -> str:
    """The code asset's ARM id, uploaded and registered first if this version is new."""
    files = code_asset.files()
    if not files:
        raise BackendError(
            "the shared stage runtime (mlstack_runtime) is not installed, and Azure ML jobs "
            "and deployments run it",
            hint="pip install mlstack-runtime into the environment that runs mlstack",
        )
    arm_id = code_asset.arm_id(p.workspace_id)
    params = {"api-version": CODE_API}
    doing = f"reading code {code_asset.NAME}:{code_asset.version()}"
    if p.arm.request("GET", arm_id, doing, params=params, absent_ok=True) is not None:
        return arm_id
    folder = f"mlstack/code/{code_asset.version()}"
    write_tree(p, uri(folder), files)
    p.arm.request(
        "PUT",
        arm_id,
        f"registering code {code_asset.NAME}:{code_asset.version()}",
        params=params,
        body={
            "properties": {
                "codeUri": f"{p.blobs.url}/{folder}",
                "isAnonymous": False,
                "isArchived": False,
                "description": "mlstack's stage runtime and scoring script",
            }
        },
    )
    ctx.emit(Event("log", arm_id, f"code {code_asset.NAME}:{code_asset.version()} uploaded"))
    return arm_id
