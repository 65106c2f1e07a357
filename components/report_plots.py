"""The run report's plots, drawn with matplotlib from the report's figures
(components/report_figures.py) and embedded in the page as base64 PNG: no file, no network."""

from __future__ import annotations

import base64
import io
from typing import Any, Dict

import numpy as np

from components import spans as span_layout
from components.report_figures import SERVED


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots(report: Dict[str, Any]) -> Dict[str, str]:
    """Figure name -> base64 PNG: "data" (purchases per user and per product), "training" (loss
    per epoch, when there are two epochs or more), "recall" (each model's recall@k curve) and "history"
    (the gated metrics of every run so far)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    out = {}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"wspace": 0.4})
    # what the users up to each bucket bought, as a cumulative share of the split's purchases: a
    # heavy tail shows as the last steps (a share per bucket would rise with the buckets' widths)
    shares = left.twinx()
    labels = []
    for split, stats in report["data"].items():
        buckets = stats.get("purchase_ranges") or []
        if buckets:
            n = np.arange(len(buckets))
            labels = max(labels, [b["label"] for b in buckets], key=len)
            left.bar(n + (0.2 if split == "eval" else -0.2), [b["users"] for b in buckets], width=0.4,
                     label=f"{split}: users")
            total = sum(b["purchases"] for b in buckets) or 1
            shares.plot(n, 100 * np.cumsum([b["purchases"] for b in buckets]) / total, marker="o", markersize=3,
                        linewidth=1, label=f"{split}: % of purchases, cumulative")
        product_counts = stats["product_counts_desc"]
        if product_counts:
            right.loglog(np.arange(1, len(product_counts) + 1), product_counts, label=split)
    left.set(title="purchases per user", xlabel="purchases", ylabel="users", yscale="log")
    left.set_xticks(np.arange(len(labels)), labels, rotation=45 if len(labels) > 12 else 0, fontsize=7)
    left.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    left.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    shares.set(ylabel="% of the split's purchases made by\nusers with at most this many", ylim=(0, 101))
    handles, names = left.get_legend_handles_labels()
    more, more_names = shares.get_legend_handles_labels()
    right.set(title="purchases per product (most bought first)", xlabel="product rank",
              ylabel="purchases")
    left.legend(handles + more, names + more_names, fontsize=7, ncol=2, loc="upper center",
                bbox_to_anchor=(0.5, -0.34 if len(labels) > 12 else -0.16))  # below: the bars and lines fill the plot
    right.legend()
    out["data"] = _png(fig)

    history = report["training"]["history"]
    # one epoch (every warm start trains one pass) is a dot in an empty frame: the epoch table
    # above the plot says it all (found by a reviewer of the replay's report)
    if len(history) >= 2:
        out["training"] = _png(_training_figure(history))

    fig, ax = plt.subplots(figsize=(6, 3.6))
    styles = {"candidate": {"linewidth": 2.2}, SERVED: {"linestyle": "--", "linewidth": 1.6}}
    for label, figures in report["evaluation"]["models"].items():
        curve = figures["recall_at_k"]  # recall@1, recall@2, ...
        ax.plot(np.arange(1, len(curve) + 1), curve, label=label, **styles.get(label, {}))
    ax.set(title="recall@k on the eval split (per purchase)", xlabel="k", ylabel="recall@k")
    ax.legend()
    ax.grid(alpha=0.3)
    out["recall"] = _png(fig)

    history = report.get("history") or []
    if history:
        out["history"] = _png(_history_figure(history))
    return out


def _training_figure(history):
    """The loss per epoch, ticks on whole epochs."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker="o")
    ax.set(title="training loss per epoch", xlabel="epoch", ylabel="loss")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    return fig


def history_label(row: Dict[str, Any], index: int) -> str:
    """A run's name in the history: its span (and window), its dated span folder (and how many
    the window has), else, in the flat layout (TFX's span 0) or without a span, its place."""
    if row.get("span") is None or row.get("flat"):
        return f"run {index + 1}"
    names = row.get("window_names")
    if names:
        return names[-1] + (f" ({len(names)} spans)" if len(names) > 1 else "")
    window = span_layout.span_numbers(row.get("window_spans"))
    return f"span {row['span']}" + (f" ({span_layout.number_ranges(window)})" if len(window) > 1 else "")


HISTORY_PANELS_PER_ROW = 4
HISTORY_LABELS = 5  # the most run names under a panel (every k-th beyond, the newest named)


def _history_figure(history):
    """The candidate's gated metrics run after run, one small panel per metric side by side (the
    runs on a shared x axis, each metric on its own y axis: found by a reviewer of the replay's
    report, recall@10 at 0.01-0.03 lay flat beside sampled accuracy at 0.08-0.14 on one axis): a
    filled marker where the model was pushed, a red cross where the gate refused it, a hollow one
    where it was blessed and not pushed; a legend names the markers drawn. The relative margins
    over popularity (a share, not a metric's value) in %, with the gate's least margin."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    margins = {name for row in history for name in row.get("margins") or ()}
    names = sorted({name for row in history for name in row["metrics"]})
    names = [n for n in names if n not in margins] + [n for n in names if n in margins]
    columns = min(len(names), HISTORY_PANELS_PER_ROW)
    rows = -(-len(names) // columns)
    # at most 8.5 inches wide: about 950 px at the plots' 110 dpi, the page's width at 1,000 px
    fig, axes = plt.subplots(rows, columns, sharex=True, squeeze=False, layout="constrained",
                             figsize=(min(8.5, 0.6 + 2.3 * columns), 0.5 + 2.4 * rows))
    x = np.arange(len(history))
    pushed = np.array([bool(row["pushed"]) for row in history])
    refused = np.array([not row["pushed"] and not row.get("blessed") for row in history])
    kept = ~pushed & ~refused  # blessed, not pushed
    rules = False
    for ax, name in zip(axes.flat, names):
        is_margin = name in margins
        values = np.array([row["metrics"].get(name) if row["metrics"].get(name) is not None else np.nan
                           for row in history], float) * (100 if is_margin else 1)
        line, = ax.plot(x, values, label=name.replace("_over_popularity", "") if is_margin else name,
                        linewidth=1.2)
        color = line.get_color()
        ax.plot(x[pushed], values[pushed], "o", color=color)
        ax.plot(x[kept], values[kept], "o", color=color, markerfacecolor="white")
        ax.plot(x[refused], values[refused], "x", color="#b00020", markersize=9, markeredgewidth=1.6)
        if is_margin:
            ax.axhline(0, color="#888", linewidth=0.8)
            # the gate's least margin of the newest run (found by exploratory testing: the panel
            # did not show where the gate refuses)
            bound = (history[-1].get("margin_bounds") or {}).get(name)
            if bound is not None:
                ax.axhline(100 * bound, color="#b00020", linewidth=0.8, linestyle="--",
                           label=f"the gate's least margin ({100 * bound:+.0f}%)")
                rules = True
            ax.set_title(f"{name.replace('_over_popularity', '')}\nvs most popular (%)", fontsize=9)
        else:
            ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.set_xlim(-0.5, len(history) - 0.5)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    step = -(-len(history) // HISTORY_LABELS)
    labels = [history_label(row, i) if (len(history) - 1 - i) % step == 0 else ""  # the newest always named
              for i, row in enumerate(history)]
    for ax in axes[-1]:
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    keys = [(pushed.any(), Line2D([], [], marker="o", linestyle="", color="#444"), "pushed"),
            (kept.any(), Line2D([], [], marker="o", linestyle="", color="#444", markerfacecolor="white"),
             "blessed, not pushed"),
            (refused.any(), Line2D([], [], marker="x", linestyle="", color="#b00020", markersize=8,
                                   markeredgewidth=1.6), "refused"),
            (rules, Line2D([], [], color="#b00020", linewidth=0.8, linestyle="--"), "the gate's least margin")]
    keys = [(handle, label) for drawn, handle, label in keys if drawn]
    fig.suptitle("gated metrics of each run's candidate", fontsize=10, x=0.02, ha="left")
    fig.legend([h for h, _ in keys], [label for _, label in keys], loc="outside upper right", ncol=len(keys),
               fontsize=8, frameon=False)
    return fig
