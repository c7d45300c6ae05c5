"""The envelope model (bulk wurtzite × spherical envelope) on the measured CdSe nanoparticle PDFs of the diffpy.cmi
book (chapter 8), refined by PDFfit2 1.5.1 with the parameters of examples/cdse_envelope.toml: a (= b), c, one
Uiso per element, delta2, scale and spdiameter, qdamp 0.058 fixed, 1.5–30 Å. The reference for the README's
CdSe rows. Run: python benchmarks/cdse_envelope_pdffit2.py [CdSe-1.gr ...]"""

import os
import re
import sys

from scatterfit.datasets import cmi_example
from scatterfit.io import load_dataset
from scatterfit.testing import pdffit2_esds


def refine(name: str) -> dict:
    from diffpy.pdffit2 import PdfFit, redirect_stdout
    from diffpy.structure import loadStructure

    redirect_stdout(open(os.devnull, "w"))
    data = load_dataset(cmi_example("pdf/ch08NPRefinement/data/" + name)).select(1e-6, None)
    st = loadStructure(str(cmi_example("pdf/ch08NPRefinement/data/CdSe-Wurtzite.cif")))
    for atom in st:
        atom.element = re.sub(r"[0-9+-]+$", "", atom.element)
    pf = PdfFit()
    pf.read_data_lists("X", 19.0, 0.058, [float(v) for v in data.x], [float(v) for v in data.y])
    pf.add_structure(st)
    for k, par in ((1, "@1"), (2, "@1"), (3, "@2")):
        pf.constrain(pf.lat(k), par)
    pf.setpar(1, st.lattice.a)
    pf.setpar(2, st.lattice.c)
    for i, atom in enumerate(st, start=1):
        for u in (pf.u11(i), pf.u22(i), pf.u33(i)):
            pf.constrain(u, "@3" if atom.element == "Cd" else "@4")
    for index, target, start in ((3, None, 0.01), (4, None, 0.01), (5, pf.delta2, 5.0), (6, pf.pscale, 0.1),
                                 (7, pf.spdiameter, 40.0)):
        if target is not None:
            pf.constrain(target, f"@{index}")
        pf.setpar(index, start)
    pf.pdfrange(1, 1.5, 30.0)
    pf.refine()
    names = ("a", "c", "uiso_Cd", "uiso_Se", "delta2", "scale", "spdiameter")
    esd = pdffit2_esds(pf)
    return {"rw": pf.getrw(), **{n: (pf.getpar(k), esd.get(k)) for k, n in enumerate(names, start=1)}}


if __name__ == "__main__":
    print(f"{'data':<12}{'Rw':>8}  parameters (value, esd)")
    for name in sys.argv[1:] or ["CdSe-1.gr", "CdSe-4.gr"]:
        out = refine(name)
        rest = ", ".join(f"{k} {v[0]:.4g}" for k, v in out.items() if k != "rw")
        print(f"{name:<12}{out['rw']:8.4f}  {rest}")
