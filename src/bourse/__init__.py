"""bourse: an open-source crypto trading and brokerage platform."""

__version__ = "0.1.0"
