"""The Kubernetes API as mlstack uses it: server-side apply, get, list, delete, pod logs.

Built on the official ``kubernetes`` client (imported here, and this module only on real work).
Objects are applied with ``application/apply-patch+yaml`` under the field manager ``mlstack``:
the custom-objects API of the generated client always sends merge patches, so the apply goes
through ``ApiClient.call_api`` with the content type set. API errors become ``BackendError``s
that say what the server said (``Status.reason``/``message``) and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlstack.errors import BackendError

FIELD_MANAGER = "mlstack"
CORE = ("", "v1")


class Cluster:
    def __init__(self, *, context: str | None, kubeconfig: str | None, namespace: str) -> None:
        from kubernetes import client, config

        self.namespace = namespace
        try:
            cfg = client.Configuration()
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=cfg
            )
        except Exception as e:  # config errors come in several types; all are the user's
            raise BackendError(
                f"cannot read the kubeconfig{f' context {context!r}' if context else ''}: {e}",
                hint="check `kubectl config get-contexts`, or set `context:`/`kubeconfig:`",
            ) from None
        self.host = cfg.host
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)

    # --- paths --------------------------------------------------------------------------------
    def _path(self, group: str, version: str, plural: str, name: str | None = None) -> str:
        root = f"/apis/{group}/{version}" if group else f"/api/{version}"
        path = f"{root}/namespaces/{self.namespace}/{plural}"
        return f"{path}/{name}" if name else path

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json", **kw.pop("headers", {})}
        try:
            return self.api.call_api(
                path,
                method,
                header_params=headers,
                response_type="object",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _preload_content=True,
                **kw,
            )
        except ApiException as e:
            raise _api_error(e, method, path) from None
        except HTTPError as e:
            raise BackendError(
                f"cannot reach the Kubernetes API at {self.host}: {e}",
                hint="check the cluster is up and the kubeconfig context points at it",
            ) from None

    # --- operations ---------------------------------------------------------------------------
    def apply(self, obj: Mapping[str, Any], plural: str, force: bool = True) -> dict[str, Any]:
        """Server-side apply ``obj`` as field manager ``mlstack``."""
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        path = self._path(group, version, plural, str(obj["metadata"]["name"]))
        out: dict[str, Any] = self._call(
            "PATCH",
            path,
            query_params=[("fieldManager", FIELD_MANAGER), ("force", force)],
            headers={"Content-Type": "application/apply-patch+yaml"},
            body=dict(obj),
        )
        return out

    def get(self, api: tuple[str, str, str], name: str) -> dict[str, Any] | None:
        try:
            out: dict[str, Any] = self._call("GET", self._path(*api, name))
        except NotFound:
            return None
        return out

    def list(self, api: tuple[str, str, str], selector: Mapping[str, str]) -> list[dict[str, Any]]:
        sel = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        out = self._call("GET", self._path(*api), query_params=[("labelSelector", sel)])
        return list(out.get("items", []))

    def delete(self, api: tuple[str, str, str], name: str, propagation: str | None = None) -> bool:
        """Delete one object; False when it was already gone. ``propagation`` is the
        ``propagationPolicy`` (``Background`` removes a Job's pods too: the API's default for
        ``batch/v1`` Jobs orphans them)."""
        query = [("propagationPolicy", propagation)] if propagation else []
        try:
            self._call("DELETE", self._path(*api, name), query_params=query)
        except NotFound:
            return False
        return True

    def pod_log(self, pod: str, container: str | None = None) -> str:
        from kubernetes.client.exceptions import ApiException

        kw = {"container": container} if container else {}
        try:
            return str(self.core.read_namespaced_pod_log(pod, self.namespace, **kw))
        except ApiException as e:
            raise _api_error(e, "GET", f"pods/{pod}/log") from None


class NotFound(BackendError):
    pass


def _api_error(e: Any, method: str, path: str) -> BackendError:
    try:
        status = json.loads(e.body or "{}")
    except ValueError:
        status = {}
    reason = status.get("reason") or e.reason
    message = status.get("message") or str(e.reason)
    if e.status == 404:
        return NotFound(f"{message}", hint="it was deleted outside mlstack, or never created")
    hints = {
        409: "another writer changed it (or owns the field): run the command again",
        422: "mlstack sent an object the cluster's schema rejects; report it with this message",
        401: "the kubeconfig's credentials are not accepted: log in again",
        403: "the kubeconfig's user may not do this: grant it the RBAC of mlstack's "
        "Kubernetes stack",
    }
    return BackendError(
        f"Kubernetes API {method} {path}: {e.status} {reason}: {message}",
        hint=hints.get(e.status, "check the cluster's API server and KServe installation"),
    )
