"""Offline training and evaluation of the hazard model, the SELD encoder and the decision stage
(imports core and data, never the reverse)."""
