"""Shared test settings: hypothesis profiles sized for 2 CPU cores; every test starts with the
packetizer's numpy engine (a receiver under test switches the compiled one on for its process)."""

import os

import pytest
from hypothesis import HealthCheck, settings

from packetizers import engine

settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def numpy_packetizer_engine():
    engine.use_compiled(False)
    yield
    engine.use_compiled(False)
