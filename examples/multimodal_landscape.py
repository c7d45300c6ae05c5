"""The loss landscape behind the multi-modal degeneracy example: every (shape, size) candidate of
multimodal_saxs_only.toml and multimodal_saxs_pdf.toml evaluated exactly as the swarm evaluates it (built,
then its particle parameters refined briefly), drawn as two heat maps side by side.

    python examples/multimodal_landscape.py [--out out/multimodal_landscape]

Writes landscape.png and landscape.json (loss per candidate, per config). Runs in a few minutes on 2 cores.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from scatterfit.config import load_config
from scatterfit.config.builders import build_evaluator

HERE = Path(__file__).resolve().parent
CONFIGS = {"SAXS alone": HERE / "multimodal_saxs_only.toml", "SAXS + PDF": HERE / "multimodal_saxs_pdf.toml"}


def landscape(config_path: Path) -> tuple[list, list, np.ndarray]:
    """Loss of every candidate on the config's (shape choice × size integer) grid: shapes, sizes, [S, Z]."""
    cfg = load_config(config_path)
    evaluator, space, _, _ = build_evaluator(cfg)
    variables = {v.name: v for v in space.variables}
    shapes = list(variables["shape"].options)
    sizes = list(range(int(variables["size"].low), int(variables["size"].high) + 1))
    grid = np.full((len(shapes), len(sizes)), np.nan)
    for a, shape in enumerate(shapes):
        for b, size in enumerate(sizes):
            candidate = {"shape": shape, "size": size}
            grid[a, b] = evaluator((candidate, space.key(candidate)))["loss"]
            print(f"{config_path.stem}: {shape:>22s} size {size}: loss {grid[a, b]:.4f}", flush=True)
    return shapes, sizes, grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/multimodal_landscape")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = {name: landscape(path) for name, path in CONFIGS.items()}
    fig, axes = plt.subplots(1, len(results), figsize=(10, 4.2), constrained_layout=True)
    for ax, (name, (shapes, sizes, grid)) in zip(axes, results.items()):
        relative = grid / np.nanmin(grid)  # loss relative to the best candidate: 1 = as good as the best
        im = ax.imshow(np.log10(relative), cmap="viridis_r", vmin=0, vmax=max(1.0, np.nanmax(np.log10(relative))))
        ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
        ax.set_yticks(range(len(shapes)), shapes)
        ax.set_xlabel("size (shells)")
        ax.set_title(f"{name}: loss / best loss")
        for a in range(len(shapes)):
            for b in range(len(sizes)):
                ax.text(b, a, f"{relative[a, b]:.2g}", ha="center", va="center", fontsize=8,
                        color="white" if relative[a, b] > 3 else "black")
        fig.colorbar(im, ax=ax, label="log10(loss / best)")
    fig.suptitle("Au147 icosahedron (simulated): every candidate's refined loss")
    fig.savefig(out / "landscape.png", dpi=130)
    (out / "landscape.json").write_text(json.dumps(
        {name: {"shapes": s, "sizes": z, "loss": g.tolist()} for name, (s, z, g) in results.items()}, indent=1))
    print(f"landscape written to {out}/landscape.png")


if __name__ == "__main__":
    main()
