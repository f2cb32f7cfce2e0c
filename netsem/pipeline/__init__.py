"""Codec <-> packetizer <-> link <-> reassembler, over real UDP or a virtual clock."""
