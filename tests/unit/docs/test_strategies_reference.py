"""strategies.md: every strategy, its parameters, and every installed backend's verdict on it."""

from __future__ import annotations

from mlstack.engine.backend import Capabilities
from mlstack.manifest.models import Deployment
from mlstack.manifest.strategies import TABLE
from mlstack.tooling import docs_gen


def test_every_strategy_and_parameter_is_on_the_page() -> None:
    page = docs_gen.strategies_reference()
    for st in TABLE:
        section = page.split(f"\n## {st.name}\n", 1)[1].split("\n## ", 1)[0]
        assert st.summary.split(",")[0][1:] in section
        for key in st.params.model_fields if st.params else ():
            assert f"| `{key}` |" in section, (st.name, key)
    header = next(line for line in page.splitlines() if line.startswith("| strategy |"))
    for backend in ("local", "sagemaker", "vertex", "azureml"):
        assert f"| {backend} |" in header or f" {backend} |" in header
    assert "kserve (serving_mode: Serverless)" in header
    assert "kserve (serving_mode: RawDeployment)" in header
    matrix = page.split(header, 1)[1].split("\n\n", 1)[0]
    rows = [line for line in matrix.splitlines() if line.startswith("| `")]
    assert len(rows) == len(TABLE) + 2  # plus ab unsticky and shadow at 50 %


def test_verdicts_follow_the_capabilities() -> None:
    canary = Deployment(endpoint="e", strategy="canary")
    shadow = Deployment(endpoint="e", strategy="shadow")
    flat = Capabilities(weighted_traffic=False)
    verdict, why = docs_gen._verdict(flat, canary)
    assert verdict == "refused" and "cannot split traffic" in why
    assert docs_gen._verdict(Capabilities(), canary)[0] == "stepped by mlstack"
    assert docs_gen._verdict(Capabilities(native_progressive=True), canary)[0] == "native"
    # a backend without mirroring is refused once, for that, not also for shadow.percent
    no_mirror = Capabilities(mirroring=False, max_mirror_percent=0.0)
    refusals = no_mirror.explain_rollout(shadow)
    assert len(refusals) == 1 and "percent" not in refusals[0].hint
    capped = Capabilities(mirroring=True, max_mirror_percent=50.0)
    assert "shadow.percent <= 50" in capped.explain_rollout(shadow)[0].hint
