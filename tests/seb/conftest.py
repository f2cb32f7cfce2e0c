from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def seb_images() -> list[tuple[str, np.ndarray]]:
    """Six 128x128 messages: two crops of each of three photographs never trained on, in three groups."""
    from netsem.seb.data import sequence_groups

    groups = sequence_groups(size=128, crops=1, seed=0)
    return [groups[0][0], groups[0][1], groups[1][0], groups[1][1], groups[2][0], groups[2][2]]


@pytest.fixture()
def seb_codec():
    """A fresh seb codec with the shipped networks and its own copy of KB version 1."""
    from netsem.seb.codec import SebCodec

    return SebCodec()
