"""Chemical restraints as flat-bottom penalties (see restraints.py)."""

from scatterfit.constraints.restraints import (
                                               RESTRAINTS,
                                               BondAngle,
                                               BondValence,
                                               ChargeNeutrality,
                                               Composition,
                                               Coordination,
                                               Density,
                                               MinDistance,
                                               flat_bottom,
                                               smooth_count,
)

__all__ = ["RESTRAINTS", "BondAngle", "BondValence", "ChargeNeutrality", "Composition", "Coordination", "Density",
           "MinDistance", "flat_bottom", "smooth_count"]
