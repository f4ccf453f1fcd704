"""The install hint names the distribution that really provides each backend."""

from __future__ import annotations

from pathlib import Path

import tomllib

from mlstack.engine.backend import DISTRIBUTIONS, KNOWN_BACKENDS, install_hint

ROOT = Path(__file__).resolve().parents[3]


def test_every_backend_distribution_in_the_repo_is_the_one_the_hint_names() -> None:
    provided: dict[str, str] = {}
    for pyproject in sorted((ROOT / "backends").glob("*/pyproject.toml")):
        meta = tomllib.loads(pyproject.read_text())["project"]
        for name in meta.get("entry-points", {}).get("mlstack.backends", {}):
            provided[name] = meta["name"]
    assert provided, "no backend distributions found under backends/"
    for name, dist in provided.items():
        assert DISTRIBUTIONS[name] == dist, name
        assert install_hint(name) == f"pip install '{dist}'"
    # every backend the manifest accepts has somewhere to come from
    assert set(KNOWN_BACKENDS) <= set(DISTRIBUTIONS)
