"""Matplotlib figures: simulated curves, fits with difference curves, loss histories."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curve(x, y, xlabel: str, ylabel: str, path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, y, lw=1)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
