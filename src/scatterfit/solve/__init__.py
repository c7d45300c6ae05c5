"""Autonomous interpretation: triage of the data, hypotheses across structure classes refined by the existing
machinery, ranking by an information criterion, and the solution written for people and schedulers."""
