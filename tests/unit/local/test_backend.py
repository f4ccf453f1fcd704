"""The local backend driven through the Backend interface, with real sklearn, pandera, MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlstack.errors import GateFailed, SpecError
from mlstack.local.store import dir_digest

ENVS = "dev: {backend: local}\nstaging: {backend: local, promote_from: dev}"


def test_compile_is_pure_and_its_digest_follows_the_spec(cancer_project) -> None:
    p = cancer_project()
    be = p.backend()
    a, b = be.compile(), be.compile()
    assert a.format == "mlstack-dag" and a.digest == b.digest
    assert a.steps == ("ingest", "validate", "split", "features", "train", "evaluate", "register")
    assert not p.workdir.exists()  # compile touched nothing
    text = (p.root / "mlstack.yaml").read_text().replace("max_iter: 300", "max_iter: 301")
    (p.root / "mlstack.yaml").write_text(text)
    assert p.backend().compile().digest != a.digest
    out = be.upsert_pipeline(a, p.ctx())
    stored = json.loads(Path(out.location).read_text())
    assert stored["digest"] == a.digest and stored["definition"]["format"] == "mlstack-dag"
    assert be.observe().resources["pipeline.demo"]["digest"] == a.digest


def test_run_register_alias_versions_and_promote(cancer_project) -> None:
    import joblib
    from mlflow import MlflowClient

    from mlstack.local.tracking import lineage, list_models, tracking_uri

    p = cancer_project(envs=ENVS)
    be = p.backend()
    result = p.run(backend=be)
    assert result.status == "succeeded"
    assert set(result.stages.values()) == {"ran"}
    for m in ("accuracy", "f1", "precision", "recall", "roc_auc"):
        assert 0.5 < result.metrics[m] <= 1.0
    model_dir = Path(result.model_uri)
    meta = json.loads((model_dir / "mlstack-model.json").read_text())
    assert meta["columns"] == [
        "mean_radius",
        "mean_texture",
        "mean_area",
        "mean_smoothness",
        "tumor_size",
    ]
    assert meta["dtypes"]["tumor_size"] == "str" and meta["task"] == "classification"
    assert meta["classes"] == [0, 1] and meta["target"] == "diagnosis"
    assert dir_digest(model_dir) == result.model_digest
    model = joblib.load(model_dir / "model.joblib")  # raw rows in, the features ship inside
    import pandas as pd

    row = pd.DataFrame(
        [
            {
                "mean_radius": 20.0,
                "mean_texture": 20.0,
                "mean_area": 1200.0,
                "mean_smoothness": 0.1,
                "tumor_size": "never-seen",
            }
        ]
    )
    assert model.predict(row)[0] in (0, 1)

    mv = be.register(result, p.ctx())
    assert (mv.name, mv.version, mv.digest) == ("cancer", "1", result.model_digest)
    assert mv.lineage["data_digest"].startswith("sha256:")
    assert [s["name"] for s in mv.lineage["stages"]][0] == "ingest"
    be.set_alias("cancer", "challenger", "1", p.ctx())
    assert be.register(result, p.ctx()).version == "1"  # same run again: same version
    [v1] = be.versions("cancer")
    assert v1.aliases == ("challenger",) and v1.metrics["roc_auc"] == result.metrics["roc_auc"]

    # nothing changed: every stage comes from the cache, and the model is the same artifact
    again = p.run(backend=be)
    assert set(again.stages.values()) == {"cached"}
    assert again.model_digest == result.model_digest

    client = MlflowClient(tracking_uri=tracking_uri(p.workdir, "dev"))
    mlv = client.get_model_version_by_alias("cancer", "challenger")
    assert str(mlv.version) == "1" and mlv.tags["mlstack.digest"] == result.model_digest
    run = client.get_run(mlv.run_id)
    assert run.data.metrics["roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    assert run.data.params["train.estimator"] == "sklearn.linear_model.LogisticRegression"
    arts = {a.path for a in client.list_artifacts(mlv.run_id)}
    assert {"model", "stages"} <= arts

    rows = list_models(p.workdir, "dev")
    assert rows[0]["version"] == "1" and rows[0]["aliases"] == ["challenger"]
    lin = lineage(p.workdir, "dev", "cancer", "1")
    assert lin["data_digest"] == mv.lineage["data_digest"]
    assert lin["stages"].startswith("ingest (ran")
    assert "240 rows" in lin["dataset"]

    staging = p.backend("staging")
    imported = staging.import_version(be.versions("cancer")[0], p.ctx("staging"))
    assert imported.digest == result.model_digest and imported.version == "1"
    assert imported.lineage["promoted_from"]["version"] == "1"
    assert be.versions("cancer")[0].version == "1"  # dev's registry is untouched
    staging.set_alias("cancer", "champion", "1", p.ctx("staging"))
    staged = MlflowClient(tracking_uri(p.workdir, "staging"))
    promoted = staged.get_model_version_by_alias("cancer", "champion")
    assert promoted.tags["mlstack.digest"] == result.model_digest
    assert promoted.tags["mlstack.promoted_from"] == "cancer@1"
    assert staging.versions("cancer")[0].aliases == ("champion",)
    assert "promoted_from" in lineage(p.workdir, "staging", "cancer", "1")

    staging.destroy("model.cancer", "model", {}, p.ctx("staging"))
    assert staging.versions("cancer") == []


def test_bad_csv_stops_at_validate_with_a_report(cancer_project) -> None:
    from tests.unit.local.conftest import cancer_frame

    df = cancer_frame()
    df.loc[3, "mean_radius"] = None
    df.loc[5, "mean_smoothness"] = 4.2
    df.loc[7, "tumor_size"] = "huge"
    p = cancer_project(frame=df)
    be = p.backend()
    with pytest.raises(GateFailed) as e:
        p.run(backend=be)
    text = e.value.render()
    assert "stage 'validate'" in text and "(and 2 more)" in text
    assert "column 'mean_radius': null values are not allowed" in text and "row 3: null" in text
    assert "column 'mean_smoothness': values must be <= 1" in text and "row 5: 4.2" in text
    assert "column 'tumor_size': values must be one of" in text and "row 7: 'huge'" in text
    runs = list((p.workdir / "envs/dev/runs").glob("*.json"))
    rec = json.loads(runs[0].read_text())
    assert rec["stages"]["validate"]["status"] == "failed"
    assert all(rec["stages"][s]["status"] == "skipped" for s in ("split", "train", "register"))
    assert be.versions("cancer") == []


def test_failing_evaluate_gate_stops_before_register(cancer_project) -> None:
    p = cancer_project(gate="roc_auc >= 0.999")
    be = p.backend()
    with pytest.raises(GateFailed) as e:
        p.run(backend=be)
    text = e.value.render()
    assert "gate `roc_auc >= 0.999` failed: roc_auc = 0.9" in text
    assert "fails >= 0.999" in text and "not registered" in text
    assert text.count("stage 'evaluate'") == 1, text  # said once, not "stage 'e': stage 'e'"
    rec = json.loads(next((p.workdir / "envs/dev/runs").glob("*.json")).read_text())
    assert rec["stages"]["evaluate"]["status"] == "failed"
    assert rec["stages"]["register"]["status"] == "skipped"
    assert rec["stages"]["train"]["status"] == "ran"
    assert be.versions("cancer") == []
    if (p.workdir / "envs/dev/mlflow.db").exists():  # MLflow may have warmed up meanwhile
        from mlflow import MlflowClient

        from mlstack.local.tracking import tracking_uri

        be.local.tracker().result()
        assert MlflowClient(tracking_uri(p.workdir, "dev")).search_registered_models() == []


def test_cached_champion_gate_is_checked_again_when_the_champion_changes(
    cancer_project, monkeypatch
) -> None:
    """A → B → A: A's cached evaluate passed against no champion; against champion B it fails."""
    from mlstack.local import pipelines
    from mlstack.local.environment import LocalEnv

    # versions are put in the registry index directly below; MLflow has no part in this
    monkeypatch.setattr(LocalEnv, "tracker", lambda self: None)
    monkeypatch.setattr(pipelines, "log_run_async", lambda env, run_id: None)
    p = cancer_project(gate="roc_auc >= champion.roc_auc - 0.05")
    spec = p.root / "mlstack.yaml"
    logistic = "estimator: sklearn.linear_model.LogisticRegression"
    dummy = "estimator: sklearn.dummy.DummyClassifier"
    text_b = spec.read_text()
    text_a = text_b.replace(logistic, dummy).replace("max_iter: 300", "strategy: prior")
    spec.write_text(text_a)

    def crown(version: str, result) -> None:
        reg = p.backend().local.registry
        reg.add(
            "cancer",
            {
                "version": version,
                "digest": result.model_digest,
                "uri": result.model_uri,
                "metrics": dict(result.metrics),
            },
        )
        reg.set_alias("cancer", "champion", version)

    first = p.run()
    assert first.stages["evaluate"] == "ran" and first.metrics["roc_auc"] == pytest.approx(0.5)
    crown("1", first)

    spec.write_text(text_b)
    better = p.run()
    assert better.stages["evaluate"] == "ran" and better.metrics["roc_auc"] > 0.9
    # the champion is unchanged: its gate's verdict is reused with everything else
    assert set(p.run().stages.values()) == {"cached"}
    crown("2", better)

    spec.write_text(text_a)  # back to A: train is cached, the champion is not what it was
    with pytest.raises(GateFailed) as e:
        p.run()
    assert "gate `roc_auc >= champion.roc_auc - 0.05` failed: roc_auc = 0.5" in e.value.render()
    runs = sorted((p.workdir / "envs/dev/runs").glob("*.json"), key=lambda f: f.stat().st_mtime)
    rec = json.loads(runs[-1].read_text())
    assert rec["stages"]["train"]["status"] == "cached"
    assert rec["stages"]["evaluate"]["status"] == "failed"
    assert rec["stages"]["register"]["status"] == "skipped"


def test_unknown_feature_column_fails_at_once_naming_stage_setting_and_line(
    cancer_project, monkeypatch
) -> None:
    from mlstack.local.environment import LocalEnv

    monkeypatch.setattr(LocalEnv, "tracker", lambda self: None)  # no model gets that far
    p = cancer_project()
    spec = p.root / "mlstack.yaml"
    text = spec.read_text().replace(
        "numeric: [mean_radius, mean_texture,", "numeric: [mean_radius, mean_textur,"
    )
    spec.write_text(
        text.replace("uses: builtin/features", "uses: builtin/features\n      retries: 2")
    )
    with pytest.raises(SpecError) as e:
        p.run()
    [problem] = e.value.problems
    assert problem.message.startswith("stage 'features': with.numeric: column(s) 'mean_textur'")
    assert "did you mean 'mean_texture'?" in problem.message
    line = 1 + spec.read_text().splitlines().index(
        next(ln for ln in spec.read_text().splitlines() if "mean_textur," in ln)
    )
    assert problem.location is not None and problem.location.line == line
    assert problem.location.file.endswith("mlstack.yaml")
    rec = json.loads(next((p.workdir / "envs/dev/runs").glob("*.json")).read_text())
    assert (
        rec["stages"]["features"]["attempts"] == 1
        and rec["stages"]["features"]["status"] == "failed"
    )
