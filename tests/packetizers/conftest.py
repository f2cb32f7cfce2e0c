"""`each_engine`: run a test once with numpy packing and unpacking, once with the compiled kernels."""

import pytest

from packetizers import engine


@pytest.fixture(params=["numpy", "compiled"])
def each_engine(request):
    """(tests/conftest.py puts the numpy engine back after every test.)"""
    if request.param == "compiled" and not engine.use_compiled():
        pytest.skip("numba is not installed")
    return request.param
