"""Simulated SAXS and X-ray PDF of a 147-atom gold Mackay icosahedron, with noise: the data of
examples/multimodal_saxs_only.toml and examples/multimodal_saxs_pdf.toml (written beside this script).

    python examples/data/make_multimodal_data.py

SAXS: Debye I(Q), 0.05–1.0 Å⁻¹, 1 % Gaussian noise. PDF: G(r) of the particle (PDFfit2 conventions, Qmax
25 Å⁻¹, Qdamp 0.03 Å⁻¹, spherical-particle baseline of 13 Å), 1.5–20 Å, noise 1 % of the largest peak.
Uiso 0.006 Å² throughout. Seeded: rerunning gives the same files.
"""

from pathlib import Path

import numpy as np
import torch

from scatterfit.scattering.debye import debye_intensity
from scatterfit.scattering.pdf import pdf
from scatterfit.structure.builders import nanoparticle

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(2026)
    truth = nanoparticle("Au", "icosahedron", 3).with_uiso(0.006)  # 147 atoms
    q = torch.arange(0.05, 1.0 + 1e-9, 0.005, dtype=torch.float64)
    i = debye_intensity(truth, q, method="exact").numpy()
    sigma_i = 0.01 * i
    i_obs = i + sigma_i * rng.standard_normal(len(q))
    np.savetxt(HERE / "au147_saxs.dat", np.column_stack([q.numpy(), i_obs, sigma_i]), fmt="%.6e",
               header="simulated SAXS of a 147-atom Au icosahedron (make_multimodal_data.py); Q (1/A), I, sigma")
    r = torch.arange(1.5, 20.0 + 1e-9, 0.02, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.03, qmax=25.0, spdiameter=13.0).numpy()
    g_obs = g + 0.01 * np.abs(g).max() * rng.standard_normal(len(r))
    np.savetxt(HERE / "au147_xray.gr", np.column_stack([r.numpy(), g_obs]), fmt="%.6e",
               header="simulated X-ray PDF of a 147-atom Au icosahedron (make_multimodal_data.py); r (A), G(r)")


if __name__ == "__main__":
    main()
