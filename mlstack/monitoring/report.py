"""`mlstack report`: one self-contained HTML file of a monitoring pass.

Everything is inline: the style sheet, and every plot as SVG drawn here from numpy histograms
(no script, no font, image or style sheet fetched: the file opens offline, and a test opens it in
headless Chromium and checks it makes no network request). Per monitored feature: the training
and live distributions over shared bins (numeric) or category shares (categorical) with the
drift scores; the prediction distribution against the training labels; the data-quality
failures; and, where labels came back, the live metric over time beside the evaluation metric.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlstack.monitoring import checks, stats
from mlstack.monitoring.feedback import classification_metrics
from mlstack.monitoring.run import MonitorResult

W, H, PAD = 420, 180, 28
REF_COLOUR, LIVE_COLOUR = "#4e79a7", "#f28e2b"

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #ddd;
text-align:left}.drift{color:#b00;font-weight:600}.ok{color:#070}.nodata{color:#888}
.grid{display:flex;flex-wrap:wrap;gap:16px}.card{border:1px solid #ddd;border-radius:6px;
padding:8px}.card h3{font-size:14px;margin:0 0 4px}.legend span{display:inline-block;width:10px;
height:10px;margin:0 4px 0 10px}.small{font-size:12px;color:#555}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def bars_svg(
    feature: str, labels: Sequence[str], ref: Sequence[float], live: Sequence[float]
) -> str:
    """Side-by-side bars of two share vectors over the same bins, as an inline SVG."""
    n = max(len(labels), 1)
    top = max([*ref, *live, 1e-9])
    slot = (W - 2 * PAD) / n
    bar = max(slot * 0.42, 0.5)
    parts = [
        f'<svg class="plot" data-feature="{_e(feature)}" '
        f'width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="{_e(feature)}: training vs live">',
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#999"/>',
    ]
    for i, (r, c) in enumerate(zip(ref, live, strict=True)):
        x = PAD + i * slot
        for j, (v, colour, cls) in enumerate(((r, REF_COLOUR, "ref"), (c, LIVE_COLOUR, "live"))):
            h = (H - 2 * PAD) * v / top
            parts.append(
                f'<rect class="{cls}" x="{x + j * bar:.2f}" y="{H - PAD - h:.2f}" '
                f'width="{bar:.2f}" height="{h:.2f}" fill="{colour}">'
                f"<title>{_e(labels[i])}: {'training' if j == 0 else 'live'} {v:.3f}</title>"
                "</rect>"
            )
    step = max(1, n // 6)
    for i in range(0, n, step):
        x = PAD + i * slot + slot / 2
        parts.append(
            f'<text x="{x:.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">'
            f"{_e(labels[i])}</text>"
        )
    parts.append(f'<text x="{PAD}" y="14" font-size="10">share (max {top:.2f})</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_svg(name: str, xs: Sequence[str], ys: Sequence[float], ref: float | None) -> str:
    """A line of a metric over time, with the evaluation value as a dashed line."""
    lo = min([*ys, *([ref] if ref is not None else [])])
    hi = max([*ys, *([ref] if ref is not None else [])])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5

    def y(v: float) -> float:
        return H - PAD - (H - 2 * PAD) * (v - lo) / (hi - lo)

    n = len(ys)
    step = (W - 2 * PAD) / max(n - 1, 1)
    pts = " ".join(f"{PAD + i * step:.1f},{y(v):.1f}" for i, v in enumerate(ys))
    parts = [
        f'<svg class="plot" data-feature="{_e(name)}" '
        f'width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{_e(name)}">',
        f'<polyline points="{pts}" fill="none" stroke="{LIVE_COLOUR}" stroke-width="2"/>',
    ]
    for i, v in enumerate(ys):
        parts.append(
            f'<circle cx="{PAD + i * step:.1f}" cy="{y(v):.1f}" r="3" fill="{LIVE_COLOUR}">'
            f"<title>{_e(xs[i])}: {v:.3f}</title></circle>"
        )
    if ref is not None:
        parts.append(
            f'<line x1="{PAD}" y1="{y(ref):.1f}" x2="{W - PAD}" y2="{y(ref):.1f}" '
            f'stroke="{REF_COLOUR}" stroke-dasharray="5,4"/>'
        )
    parts.append(f'<text x="{PAD}" y="14" font-size="10">{_e(name)} ({lo:.2f} to {hi:.2f})</text>')
    parts.append(
        f'<text x="{PAD}" y="{H - 8}" font-size="10">{_e(xs[0])}</text>'
        f'<text x="{W - PAD}" y="{H - 8}" font-size="10" text-anchor="end">{_e(xs[-1])}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def feature_plot(
    f: checks.FeatureDrift, reference: Sequence[object], live: Sequence[object]
) -> str:
    if f.kind == "categorical":
        cats = list(f.shares)
        return bars_svg(
            f.feature, cats, [f.shares[c][0] for c in cats], [f.shares[c][1] for c in cats]
        )
    ref, _, _ = checks.numeric_side(reference)
    cur, _, _ = checks.numeric_side(live)
    if ref.size == 0 and cur.size == 0:
        return ""
    edges, r, c = stats.histogram(ref, cur)
    labels = [f"{v:.3g}" for v in edges[:-1]]
    return bars_svg(f.feature, labels, r.tolist(), c.tolist())


def _verdict(f: checks.FeatureDrift) -> str:
    cls = {"drift": "drift", "ok": "ok"}.get(f.verdict, "nodata")
    return f'<span class="{cls}">{_e(f.verdict)}</span>'


def _metric_over_time(r: MonitorResult, labels: Mapping[str, Any], buckets: int = 8) -> str:
    cap, lq = r.capture, r.live_quality
    if lq is None:
        return ""
    rows = [
        (t, p, labels[i])
        for t, p, i in zip(cap.timestamps, cap.predictions, cap.request_ids, strict=False)
        if i is not None and p is not None and i in labels
    ]
    if len(rows) < 2:
        return ""
    ts = np.asarray([t for t, _, _ in rows])
    edges = np.linspace(ts.min(), ts.max() + 1e-6, min(buckets, len(rows)) + 1)
    which = np.searchsorted(edges, ts, side="right") - 1
    name = next(iter(lq.metrics))
    xs, ys = [], []
    for b in range(len(edges) - 1):
        sel = [rows[i] for i in np.flatnonzero(which == b)]
        if not sel:
            continue
        if lq.task == "regression":
            err = np.asarray([float(p) - float(y) for _, p, y in sel])  # type: ignore[arg-type]
            v = float(np.sqrt(np.mean(err**2)))
        else:
            v = classification_metrics([p for _, p, _ in sel], [y for _, _, y in sel])[name]
        xs.append(time.strftime("%H:%M:%S", time.gmtime(float(edges[b]))))
        ys.append(v)
    if not ys:
        return ""
    return line_svg(f"live {name}", xs, ys, lq.evaluation.get(name))


def render(r: MonitorResult) -> str:
    cap = r.capture
    n_ref = len(next(iter(cap.reference.values()), ()))
    verdict = "drift: " + ", ".join(r.drifted_features) if r.drifted else "no drift"
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>mlstack report: {_e(r.endpoint)} ({_e(r.environment)})</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Endpoint {_e(r.endpoint)} ({_e(r.environment)}): {_e(r.model)} v{_e(r.version)}</h1>",
        f"<p>{cap.n_live} live rows (last {_e(r.since)}) against {n_ref} training rows; "
        f'<span class="{"drift" if r.drifted else "ok"}">{_e(verdict)}</span>. '
        f"{_e(r.reason())}. Generated {_e(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))}."
        "</p>",
        '<p class="legend small">'
        f'<span style="background:{REF_COLOUR}"></span>training'
        f'<span style="background:{LIVE_COLOUR}"></span>live</p>',
        "<h2>Drift scores</h2><table><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS</th>"
        "<th>p-value</th><th>live rows</th><th>verdict</th></tr>",
    ]
    features = [*r.features, *([r.prediction] if r.prediction else [])]
    for f in features:
        out.append(
            f"<tr><td>{_e(f.feature)}</td><td>{f.kind}</td><td>{_num(f.psi)}</td>"
            f"<td>{_num(f.ks)}</td><td>{_num(f.p_value)}</td><td>{f.n_live}</td>"
            f"<td>{_verdict(f)}</td></tr>"
        )
    out.append("</table>")
    out.append("<h2>Live vs training distributions</h2><div class='grid'>")
    for f in r.features:
        plot = feature_plot(f, cap.reference.get(f.feature, ()), cap.live.get(f.feature, ()))
        out.append(
            f"<div class='card'><h3>{_e(f.feature)} {_verdict(f)}</h3>{plot}"
            f"<div class='small'>PSI {_num(f.psi)} · KS {_num(f.ks)} · p {_num(f.p_value)}</div>"
            "</div>"
        )
    if r.prediction is not None and cap.target:
        preds = [p for p in cap.predictions if p is not None]
        # classification: the prediction's verdict carries the class shares
        plot = feature_plot(r.prediction, cap.reference[cap.target], preds)
        out.append(
            f"<div class='card'><h3>{_e(r.prediction.feature)} {_verdict(r.prediction)}</h3>"
            f"{plot}<div class='small'>live predictions vs training labels</div></div>"
        )
    out.append("</div>")
    out.append("<h2>Data quality of live requests</h2>")
    if r.quality:
        out.append("<table><tr><th>feature</th><th>check</th><th>rows</th><th>detail</th></tr>")
        for q in r.quality:
            out.append(
                f"<tr><td>{_e(q.feature)}</td><td>{q.check}</td><td>{q.rows}/{q.n_live}</td>"
                f"<td>{_e(q.detail)}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p class='ok'>Every live row meets data.expectations.</p>")
    out.append("<h2>Live quality</h2>")
    if r.live_quality is not None:
        lq = r.live_quality
        out.append("<table><tr><th>metric</th><th>live</th><th>at evaluation</th></tr>")
        for k, v in lq.metrics.items():
            out.append(
                f"<tr><td>{k}</td><td>{v:.4f}</td><td>{_num(lq.evaluation.get(k), 4)}</td></tr>"
            )
        out.append(f"</table><p class='small'>{lq.labelled} labelled answers</p>")
        out.append(_metric_over_time(r, r.label_values))
    else:
        out.append("<p class='nodata'>No labels for the sampled answers (mlstack feedback).</p>")
    out.append("</body></html>")
    return "\n".join(out)


def write(r: MonitorResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(r), encoding="utf-8")
    return path
