"""Your own torch model over a lossy network in ten lines (README: "Bring your own codec").

    python examples/own_codec.py
    netsem send skimage:coffee --codec examples.own_codec:codec --netem 'loss random 10%'

The networks here are untrained (random weights), so the picture is noise; load your trained
weights into `encoder` and `decoder` and the same lines measure your model.
"""

import torch
from torch import nn

import netsem

torch.manual_seed(0)
encoder = nn.Sequential(nn.Conv2d(3, 32, 5, 2, 2), nn.PReLU(), nn.Conv2d(32, 8, 5, 2, 2))  # (B,3,H,W) -> (B,8,H/4,W/4)
decoder = nn.Sequential(nn.ConvTranspose2d(8, 32, 5, 2, 2, 1), nn.PReLU(),
                        nn.ConvTranspose2d(32, 3, 5, 2, 2, 1), nn.Sigmoid())  # back to (B,3,H,W) in [0, 1]
codec = netsem.TorchCodec("my-codec", encoder, decoder, bit_width=6, clip=3.0, multiple=4)

if __name__ == "__main__":
    report = netsem.simulate("skimage:coffee", codec=codec, partition="channel", netem="loss random 10%", seed=1)
    print(f"{report.codec}: {report.psnr_db:.2f} dB, {report.datagrams_received}/{report.datagrams_sent} datagrams, "
          f"{report.bpp:.2f} bits per pixel on the wire")
