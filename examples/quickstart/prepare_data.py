"""Write data/cancer.csv from scikit-learn's bundled breast-cancer dataset (no download).

Columns used by mlstack.yaml get snake_case names (mean_radius, ...); ``tumor_size`` is a
categorical column derived from mean_area (small / medium / large) so the example exercises
categorical features; ``diagnosis`` is the target (1 = malignant, 0 = benign).

The output is byte-for-byte the same on every run (no sampling, fixed column order, ``\n`` line
ends), so its digest, the pipeline cache and ``sample.json`` (one row of these columns without
the target) stay valid; an unchanged file is not rewritten.
"""

from __future__ import annotations

from pathlib import Path


def main() -> Path:
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    df = bunch.frame.rename(columns=lambda c: c.replace(" ", "_"))
    df = df.rename(columns={"target": "diagnosis"})
    # sklearn codes malignant as 0; a positive class of "malignant" reads better as 1.
    df["diagnosis"] = (1 - df["diagnosis"]).astype(int)
    df["tumor_size"] = pd.cut(
        df["mean_area"], bins=[0, 500, 1000, float("inf")], labels=["small", "medium", "large"]
    ).astype(str)
    out = Path(__file__).resolve().parent / "data" / "cancer.csv"
    out.parent.mkdir(exist_ok=True)
    text = df.to_csv(index=False, lineterminator="\n")
    if out.exists() and out.read_text() == text:
        print(f"{out} is up to date ({len(df)} rows x {len(df.columns)} columns)")
        return out
    out.write_text(text)
    print(f"wrote {len(df)} rows x {len(df.columns)} columns to {out}")
    return out


if __name__ == "__main__":
    main()
