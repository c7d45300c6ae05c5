"""The envelope model (bulk wurtzite × spherical envelope) on the measured CdSe nanoparticle PDFs of the diffpy.cmi
book (chapter 8), refined by PDFfit2 1.5.1 with the parameters of examples/cdse_envelope.toml: a (= b), c, one
Uiso per element, delta2, scale and spdiameter, qdamp 0.058 fixed, 1.5–30 Å (scatterfit.testing's
pdffit2_envelope_reference, which tests/examples/test_cdse_envelope.py also runs). The reference for the README's
CdSe rows. Run: python benchmarks/cdse_envelope_pdffit2.py [CdSe-1.gr ...]"""

import sys

from scatterfit.datasets import cmi_example
from scatterfit.io import load_dataset
from scatterfit.testing import pdffit2_envelope_reference

FOLDER = "pdf/ch08NPRefinement/data/"

if __name__ == "__main__":
    print(f"{'data':<12}{'Rw':>8}  parameters (value, esd)")
    for name in sys.argv[1:] or ["CdSe-1.gr", "CdSe-4.gr"]:
        out = pdffit2_envelope_reference(load_dataset(cmi_example(FOLDER + name)),
                                         cmi_example(FOLDER + "CdSe-Wurtzite.cif"))
        rest = ", ".join(f"{k} {v[0]:.4g}" for k, v in out.items() if k != "rw")
        print(f"{name:<12}{out['rw']:8.4f}  {rest}")
