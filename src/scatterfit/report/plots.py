"""Matplotlib figures: simulated curves, fits with difference curves, loss histories."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curve(x, y, xlabel: str, ylabel: str, path, title: str = "", fmt: str | None = None) -> None:
    """One curve; ``fmt`` (e.g. "png") when the file name does not end in the format."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, y, lw=1)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format=fmt)
    plt.close(fig)


AXES = {"gr": ("r (Å)", "G(r) (Å⁻²)"), "sq": ("Q (Å⁻¹)", "S(Q)"), "fq": ("Q (Å⁻¹)", "F(Q) (Å⁻¹)")}
POWDER_X = {"degrees": "2θ (°)", "microseconds": "time of flight (µs)", "inv_angstrom": "Q (Å⁻¹)"}


def axis_labels(kind: str, x_unit: str | None = None) -> tuple[str, str]:
    """(x label, y label) of a dataset kind's plots; a Bragg pattern's x by its unit."""
    if kind == "xrd":
        return POWDER_X.get(x_unit, "x"), "intensity (counts)"
    return AXES.get(kind, ("Q (Å⁻¹)", "intensity"))


def plot_fit(x, y_obs, y_calc, xlabel: str, ylabel: str, path, title: str = "", offset: float | None = None) -> None:
    """Data (circles), model (line) and difference curve offset below, as PDF users expect."""
    x, y_obs, y_calc = map(np.asarray, (x, y_obs, y_calc))
    diff = y_obs - y_calc
    if offset is None:
        offset = y_obs.min() - 0.1 * (y_obs.max() - y_obs.min()) - diff.max()
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(x, y_obs, "o", ms=2.5, mfc="none", color="tab:blue", label="data")
    ax.plot(x, y_calc, "-", lw=1.2, color="tab:red", label="model")
    ax.plot(x, diff + offset, "-", lw=1, color="tab:green", label="difference")
    ax.axhline(offset, color="k", lw=0.5, ls=":")
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title)
    ax.legend(loc="upper right", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_history(losses, path, title: str = "loss history", ylabel: str = "loss", xlabel: str = "step") -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    losses = np.asarray(losses, dtype=float)
    if losses.size and np.all(losses[np.isfinite(losses)] > 0):
        ax.semilogy(np.arange(len(losses)), losses)
    else:
        ax.plot(np.arange(len(losses)), losses)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_chemistry(report: dict, path, title: str = "") -> bool:
    """The chemist's distributions from a chemistry_report (analysis/chemistry.py): one panel per centre
    element with its coordination histogram by neighbour element, then one panel of bond-angle histograms
    (10° bins) per centre element. Returns False (nothing drawn) when the report has no coordination."""
    coordination = report.get("coordination") or {}
    if not coordination:
        return False
    centres = list(coordination)
    angles_by_centre = {c: {k: v for k, v in report.get("angles", {}).items()
                            if k.split("-")[1] == c and v.get("count")} for c in centres}
    fig, axes = plt.subplots(2, len(centres), figsize=(4.2 * len(centres), 6.5), squeeze=False)
    for col, centre in enumerate(centres):
        ax = axes[0, col]
        entry = coordination[centre]
        partners = [k for k in entry if k != "total"]
        counts = sorted({int(n) for k in partners for n in entry[k]})
        width = 0.8 / max(len(partners), 1)
        for p, partner in enumerate(partners):
            heights = [entry[partner].get(n, entry[partner].get(str(n), 0)) for n in counts]
            ax.bar(np.asarray(counts) + (p - (len(partners) - 1) / 2) * width, heights, width, label=f"{partner}")
        ax.set_xlabel(f"neighbours of {centre}"), ax.set_ylabel("atoms"), ax.set_xticks(counts)
        ax.legend(frameon=False, title="neighbour", fontsize=8)
        ax = axes[1, col]
        centres_deg = np.arange(5, 180, 10)
        for name, stats in angles_by_centre[centre].items():
            hist = np.asarray(stats["histogram_10deg"], dtype=float)
            ax.step(centres_deg, hist / max(hist.sum(), 1), where="mid",
                    label=f"{name}: {stats['mean']:.1f} ± {stats['std']:.1f}°")
        ax.set_xlabel(f"bond angle at {centre} (°)"), ax.set_ylabel("fraction"), ax.set_xlim(0, 180)
        if angles_by_centre[centre]:
            ax.legend(frameon=False, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
