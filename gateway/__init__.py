"""RIEC-LIEC data-sharing gateway: policy-enforced, audited exchange between partners."""

__version__ = "0.1.0"
