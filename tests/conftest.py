"""Test configuration: every test runs in float64 (as diffrax's and optax's do)."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
