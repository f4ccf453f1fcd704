"""What a managed online deployment's container does with a request, for the fake.

Following "Deploy and score a machine learning model by using an online endpoint" and "Advanced
entry script authoring" (Azure ML's inference server): the deployment's code folder (its code
version's ``codeUri``) is fetched, the registered model version's files are mounted under
``AZUREML_MODEL_DIR`` (a model registered from a folder appears as
``$AZUREML_MODEL_DIR/<folder name>``), the scoring script named by ``codeConfiguration`` is
imported and its ``init()`` called once; each request's body is handed to ``run(raw_data)`` as a
string and what it returns is the JSON answer; an exception is a 500.

The image is not pulled: the script runs in this process. It imports ``mlstack_runtime``, which
must be in the code folder (the curated image does not have it); the copy that runs is the
installed one, so the fake checks the shipped copy is the same source.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from .assets import code_of, code_prefix, datastore_path, download, workspace_of


class Container:
    """One deployment's loaded scoring script over its model files."""

    def __init__(self, fake: Any, deployment: dict[str, Any]) -> None:
        props = deployment["properties"]
        conf = props.get("codeConfiguration") or {}
        root = Path(fake.workdir) / "containers" / uuid.uuid4().hex
        code = root / "code"
        ws = workspace_of(deployment["id"])
        code_version = code_of(fake, str(conf.get("codeId")))
        download(fake.blobs(ws), code_prefix(fake, code_version["properties"]["codeUri"], ws), code)
        _same_runtime(code)
        m = re.search(r"/models/([^/]+)/versions/([^/]+)$", str(props.get("model")))
        if not m:
            raise RuntimeError(f"deployment {deployment['name']} names no model version")
        model = fake.state.models[ws][m.group(1)][m.group(2)]["properties"]
        uri = str(model.get("modelUri"))
        path = datastore_path(uri)
        model_dir = root / "model"
        # a long-form URI names the workspace whose datastore holds the files
        if not download(
            fake.blobs(workspace_of(uri, ws)), path, model_dir / path.rsplit("/", 1)[-1]
        ):
            raise RuntimeError(f"model {m.group(1)}:{m.group(2)} has no files at {path}")
        script = code / str(conf.get("scoringScript"))
        spec = importlib.util.spec_from_file_location(f"score_{uuid.uuid4().hex}", script)
        if spec is None or spec.loader is None or not script.is_file():
            raise RuntimeError(f"scoring script {conf.get('scoringScript')!r} not in the code")
        self.module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)
        old = os.environ.get("AZUREML_MODEL_DIR")
        os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
        try:
            self.module.init()
        finally:
            if old is None:
                os.environ.pop("AZUREML_MODEL_DIR", None)
            else:
                os.environ["AZUREML_MODEL_DIR"] = old
        self.key = _key(deployment)

    def score(self, body: Any) -> tuple[int, Any]:
        try:
            answer = self.module.run(json.dumps(body))
        except Exception as e:  # noqa: BLE001 - the inference server answers 500 with it
            return 500, {"message": f"{type(e).__name__}: {e}"}
        return 200, answer


def _key(deployment: dict[str, Any]) -> str:
    props = deployment["properties"]
    return json.dumps([props.get("codeConfiguration"), props.get("model")], sort_keys=True)


def _same_runtime(code: Path) -> None:
    import mlstack_runtime

    installed = Path(mlstack_runtime.__file__).parent
    shipped = code / "mlstack_runtime"
    for f in sorted(installed.rglob("*.py")):
        rel = f.relative_to(installed)
        if not (shipped / rel).is_file() or (shipped / rel).read_bytes() != f.read_bytes():
            raise RuntimeError(f"the code folder's mlstack_runtime/{rel} is missing or differs")


def container_for(fake: Any, deployment: dict[str, Any]) -> Container:
    """The deployment's container, started again when its code or model changed."""
    found: Container | None = fake.containers.get(deployment["id"])
    if found is None or found.key != _key(deployment):
        found = Container(fake, deployment)
        fake.containers[deployment["id"]] = found
    return found
