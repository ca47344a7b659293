"""Models assembled from :mod:`hhjax.channels`. Each module defines a model's
parameter, state and trace tuples and the :class:`hhjax.Model` that ties them."""

from hhjax.models.hh import HH as HH
from hhjax.models.pospischil import POSPISCHIL as POSPISCHIL
