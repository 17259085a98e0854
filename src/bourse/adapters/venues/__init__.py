"""External venues (the ``Venue`` port of ``service/ports.py``): ``paper`` (simulated inside the
platform), ``ccxt_venue`` (real exchanges through ccxt), and ``registry`` (the ``VenueConnector``
that makes one venue object per stored venue). ``_template/`` is a skeleton to copy for a new
kind of venue; it is not a package and nothing imports it.
"""
