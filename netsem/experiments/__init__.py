"""Experiments that combine layers (codecs, PHY, pipeline): the layers themselves stay
independent of each other — `phy/` knows no codec, codecs know no network — and what needs
several of them lives here."""
