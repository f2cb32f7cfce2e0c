"""`each_engine`: run a test once with numpy packing and unpacking, once with the compiled kernels."""

import pytest

from packetizers import engine


@pytest.fixture(params=["numpy", "compiled"])
def each_engine(request):
    before = engine.compiled
    if request.param == "compiled" and not engine.use_compiled():
        pytest.skip("numba is not installed")
    if request.param == "numpy":
        engine.use_compiled(False)
    yield request.param
    engine.compiled = before
