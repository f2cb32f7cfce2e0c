"""Codec <-> packetizer <-> link <-> reassembler, over real UDP or a virtual clock."""

# The default codec, chosen from measurements (README, "Codecs"): on photographs never trained on it loses
# 2.8 dB to jpeg at equal bytes with nothing lost, beats concealed jpeg by 1.2 dB at 10 % loss and keeps 89 %
# of its PSNR at 40 %; it is the rate point q6 (8x down), --quality 5.
DEFAULT_CODEC = "cnn-sem-impute-q6-ec"

# The loss a rate target (`--bpp`) is chosen for unless told otherwise, in percent of datagrams: a
# network tool's links lose some. On photographs never trained on, over 10 seeds, expecting 10 % cost
# 0.16 dB with nothing lost at 0.5 bpp (0.02 at most from 0.75 to 2) and kept 89-90 % of the PSNR at
# 40 % loss where choosing for nothing lost kept 84-89 % (README, "At the rate targets, under loss").
DEFAULT_EXPECTED_LOSS = 10.0
