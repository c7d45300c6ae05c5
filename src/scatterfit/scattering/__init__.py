"""Pure forward models: structure (torch) in, pattern (torch) out, no I/O."""

from scatterfit.scattering.debye import debye_intensity, debye_intensity_batch, debye_partials
from scatterfit.scattering.pdf import pdf, pdf_partials
from scatterfit.scattering.powder import PowderSetup, powder_pattern, reflections
from scatterfit.scattering.saxs import saxs_intensity
from scatterfit.scattering.transforms import fq_from_pdf, pdf_from_fq, reduced_structure_factor, structure_factor

__all__ = ["debye_intensity", "debye_intensity_batch", "debye_partials", "pdf", "pdf_partials", "PowderSetup",
           "powder_pattern",
           "reflections", "saxs_intensity", "structure_factor", "reduced_structure_factor", "pdf_from_fq",
           "fq_from_pdf"]
