"""The run report's plots, drawn with matplotlib from the report's figures
(components/report_figures.py) and embedded in the page as base64 PNG: no file, no network."""

from __future__ import annotations

import base64
import io
from typing import Any, Dict

import numpy as np

from components.report_figures import MAX_PURCHASES_BAR


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots(report: Dict[str, Any]) -> Dict[str, str]:
    """Figure name -> base64 PNG: "data" (purchases per user and per product), "training" (loss
    per epoch, when there is a history) and "recall" (each model's recall@k curve)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    out = {}
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for split, stats in report["data"].items():
        counts = stats["users_by_purchases"]
        if counts:
            n = np.arange(len(counts))
            left.bar(n[1:] + (0.2 if split == "eval" else -0.2), counts[1:], width=0.4, label=split)
        product_counts = stats["product_counts_desc"]
        if product_counts:
            right.loglog(np.arange(1, len(product_counts) + 1), product_counts, label=split)
    left.set(title="purchases per user", xlabel=f"purchases (last bar: {MAX_PURCHASES_BAR} or more)",
             ylabel="users", yscale="log")
    left.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    left.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.set(title="purchases per product (most bought first)", xlabel="product rank",
              ylabel="purchases")
    left.legend()
    right.legend()
    out["data"] = _png(fig)

    history = report["training"]["history"]
    if history:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker="o")
        ax.set(title="training loss per epoch", xlabel="epoch", ylabel="loss")
        ax.xaxis.get_major_locator().set_params(integer=True)
        out["training"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    styles = {"candidate": {"linewidth": 2.2}, "last blessed": {"linestyle": "--", "linewidth": 1.6}}
    for label, figures in report["evaluation"]["models"].items():
        curve = figures["recall_at_k"]  # recall@1, recall@2, ...
        ax.plot(np.arange(1, len(curve) + 1), curve, label=label, **styles.get(label, {}))
    ax.set(title="recall@k on the eval split (per purchase)", xlabel="k", ylabel="recall@k")
    ax.legend()
    ax.grid(alpha=0.3)
    out["recall"] = _png(fig)
    return out
