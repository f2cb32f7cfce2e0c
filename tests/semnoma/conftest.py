import numpy as np
import pytest
import torch

from netsem.semnoma.config import SemNomaConfig
from netsem.semnoma.model import SemNomaJscc


@pytest.fixture(scope="session")
def small_model() -> SemNomaJscc:
    """An untrained network of the shipped shape: what the plumbing sees is the same."""
    torch.manual_seed(0)
    return SemNomaJscc(SemNomaConfig()).eval()


@pytest.fixture(scope="session")
def pair() -> list[np.ndarray]:
    import skimage.data

    from netsem.semnoma.images import fit_image

    return [fit_image(skimage.data.astronaut(), 32), fit_image(skimage.data.coffee(), 32)]
