"""Offline training and evaluation of the imagination model (imports core and data, never the reverse)."""
