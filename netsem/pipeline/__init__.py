"""Codec <-> packetizer <-> link <-> reassembler, over real UDP or a virtual clock."""

DEFAULT_CODEC = "cnn-sem"  # the best trained codec that ships (README, codec table)
