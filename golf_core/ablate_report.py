"""The human side of an ablation: ``ablation.md`` (the table for a pull request),
``ablation.png`` (delta against the base with error bars) and ``curves.png`` (validation
curves of every run, read from each run's metrics.jsonl). Input is the summary dict that
``golf_core.ablate.summarize`` returns (the content of ablation.json).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from . import stats


def _f(x: Any, digits: int = 4, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _p(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.2e}" if x < 1e-3 else f"{x:.4f}"


def _secs(x: Any) -> str:
    return "–" if x is None else f"{x:.1f}"


def render_markdown(summary: dict) -> str:
    """The ablation table and its legend as Markdown."""
    bar = summary.get("bar", {})
    margin = bar.get("margin_bpb")
    seeds = summary.get("seeds", [])
    lines = [
        f"# Ablation of `{Path(summary.get('recipe', '?')).name}`",
        "",
        f"- mode: **{summary.get('mode')}**; toggled: {', '.join(f'`{t}`' for t in summary.get('toggles', []))}",
        f"- seeds: {', '.join(str(s) for s in seeds)} ({len(seeds)} per variant)"
        + (" · `--tiny`" if summary.get("tiny") else "")
        + ("".join(f" · `--set {s}`" for s in summary.get("sets", []))),
        f"- recipe plugins: {', '.join(f'`{p}`' for p in summary.get('recipe_plugins', [])) or '(none)'}",
    ]
    if not summary.get("complete", True):
        lines.append("- **incomplete**: some runs have not finished")
    lines += [
        "",
        "| variant | plugins | n | val_bpb (mean ± std) | Δ bpb | Δ nats/token | Welch t | p | p (bar) | passes bar | artifact bytes | train s | eval s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for v in summary.get("variants", []):
        is_base = v["name"] == "base"
        mean_std = f"{_f(v.get('mean'))} ± {_f(v.get('std'))}" if v.get("n") else "–"
        passes = "–" if v.get("passes_bar") is None else ("**yes**" if v["passes_bar"] else "no")
        art = v.get("artifact_bytes")
        art_s = "–" if art is None else f"{art:,}" + ("" if v.get("under_cap", True) else " (over cap)")
        lines.append(
            "| " + " | ".join([
                f"**{v['name']}**" if is_base else f"`{v['name']}`",
                ", ".join(v.get("plugins", [])) or "(none)",
                str(v.get("n", 0)),
                mean_std,
                "0" if is_base else _f(v.get("delta_bpb"), 4, signed=True),
                "0" if is_base else _f(v.get("delta_nats"), 4, signed=True),
                "–" if is_base else _f(v.get("t"), 2),
                "–" if is_base else _p(v.get("p")),
                "–" if is_base else _p(v.get("p_bar")),
                "–" if is_base else passes,
                art_s,
                _secs(v.get("train_seconds")),
                _secs(v.get("eval_seconds")),
            ]) + " |"
        )
    lines += [
        "",
        "Δ = variant − base (negative is better). Welch t and p: two-sided Welch test of the "
        "difference in mean val_bpb (t has the sign of Δ).",
        f"Bar (challenge rule): an improvement of at least {stats.BAR_NATS} nats per token at "
        f"p < {stats.BAR_P}; tested one-sided, H1: mean(base) − mean(variant) > "
        + (f"{margin:.5f} bpb" if margin is not None else "the margin (unknown: no val_tokens/val_bytes)")
        + " (= 0.005 nats/token × val_tokens / (val_bytes × ln 2) of the base runs); `p (bar)` is that "
        "test's p-value. nats/token = bpb × ln 2 × val_bytes / val_tokens.",
        "Artifact bytes: the largest over seeds; train/eval seconds: mean over seeds.",
        "",
    ]
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_deltas(summary: dict, path: Path) -> None:
    """ablation.png: each variant's Δ val_bpb against the base (mean over seeds), error bars
    ±1 standard error of the difference (Welch), single seeds as dots, the bar's margin dashed."""
    plt = _plt()
    variants = [v for v in summary.get("variants", []) if v["name"] != "base"]
    base = next((v for v in summary.get("variants", []) if v["name"] == "base"), None)
    base_mean = base.get("mean") if base else None
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.55 * max(1, len(variants))))
    ys = list(range(len(variants)))[::-1]
    for y, v in zip(ys, variants):
        d = v.get("delta_bpb")
        if d is None or (isinstance(d, float) and not math.isfinite(d)):
            continue
        se = v.get("se_bpb")
        err = se if se is not None and math.isfinite(se) else None
        color = "tab:green" if v.get("passes_bar") else ("tab:blue" if d < 0 else "tab:red")
        ax.errorbar([d], [y], xerr=None if err is None else [[err], [err]], fmt="o", color=color,
                    capsize=4, markersize=7, zorder=3)
        if base_mean is not None and math.isfinite(base_mean):
            pts = [x - base_mean for x in v.get("val_bpb", [])]
            ax.scatter(pts, [y] * len(pts), s=12, color=color, alpha=0.4, zorder=2)
        label = f"p={_p(v.get('p'))}" + (" ✓bar" if v.get("passes_bar") else "")
        ax.annotate(label, (d, y), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=7)
    ax.axvline(0.0, color="black", linewidth=0.8)
    margin = summary.get("bar", {}).get("margin_bpb")
    if margin is not None:
        ax.axvline(-margin, color="tab:green", linestyle="--", linewidth=0.8,
                   label=f"bar: −{stats.BAR_NATS} nats = −{margin:.4f} bpb")
        ax.legend(loc="best", fontsize=7)
    ax.set_yticks(ys)
    ax.set_yticklabels([v["name"] for v in variants])
    ax.set_ylim(-0.8, max(0, len(variants) - 1) + 0.8)
    ax.set_xlabel("Δ val_bpb vs base (negative is better); error bars ±1 s.e.")
    n = len(summary.get("seeds", []))
    ax.set_title(f"{Path(summary.get('recipe', '?')).name}: {summary.get('mode')}, {n} seed(s)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def read_curve(run_dir: str | Path, final: bool = False) -> list[tuple[float, float]]:
    """(step, val_bpb) points of one run from its metrics.jsonl.

    The curve (``final=False``) is the ``"event": "val"`` lines except the final quantized
    score (``"phase": "final"``), i.e. the in-training validations and the pre-quantization
    score; with no ``val`` events, every line holding both ``step`` and ``val_bpb``.
    ``final=True`` gives the ``"phase": "final"`` point(s). Malformed lines are ignored; a
    missing file gives no points.
    """
    path = Path(run_dir) / "metrics.jsonl"
    try:
        text = path.read_text()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict):
            rows.append(d)

    def ok(d: dict) -> bool:
        s, v = d.get("step"), d.get("val_bpb")
        return (isinstance(s, (int, float)) and isinstance(v, (int, float)) and not isinstance(s, bool)
                and not isinstance(v, bool) and math.isfinite(v))

    pts = [d for d in rows if ok(d)]
    if final:
        chosen = [d for d in pts if d.get("phase") == "final"]
    else:
        pts = [d for d in pts if d.get("phase") != "final"]
        chosen = [d for d in pts if d.get("event") == "val"] or pts
    return sorted((float(d["step"]), float(d["val_bpb"])) for d in chosen)


def plot_curves(summary: dict, path: Path) -> None:
    """curves.png: validation val_bpb against step for every run, one colour per variant,
    one line style per seed; the final score of the decoded artifact as an ``x``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    cmap = plt.get_cmap("tab10")
    styles = ["-", "--", ":", "-."]
    any_points = False
    seeds = summary.get("seeds", [])
    for i, v in enumerate(summary.get("variants", [])):
        color = "black" if v["name"] == "base" else cmap(i % 10)
        for j, (seed, rd) in enumerate(zip(v.get("seeds", []), v.get("run_dirs", []))):
            pts = read_curve(rd)
            fin = read_curve(rd, final=True)
            label = v["name"] if j == 0 else None
            si = seeds.index(seed) if seed in seeds else j
            if pts:
                any_points = True
                xs, ys = zip(*pts)
                ax.plot(xs, ys, linestyle=styles[si % len(styles)], marker="o", markersize=3, color=color,
                        label=label, linewidth=1.2)
                label = None
            if fin:
                any_points = True
                xs, ys = zip(*fin)
                ax.scatter(xs, ys, marker="x", s=30, color=color, label=label, zorder=3)
    if not any_points:
        ax.text(0.5, 0.5, "no validation points in metrics.jsonl", ha="center", va="center",
                transform=ax.transAxes)
    else:
        ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("step")
    ax.set_ylabel("val_bpb")
    ax.set_title("validation curves (line style: seed; x: final score of the decoded artifact)", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(summary: dict, out_dir: str | Path) -> list[Path]:
    """Write ablation.md, ablation.png and curves.png into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "ablation.md"
    md.write_text(render_markdown(summary))
    png = out / "ablation.png"
    plot_deltas(summary, png)
    curves = out / "curves.png"
    plot_curves(summary, curves)
    return [md, png, curves]

