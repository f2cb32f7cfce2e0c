"""The learned codecs' networks (torch).  Both keep their latent as a (B, C, h, w) map in
units of quantizer steps; the Swin codec's wrapper reads it as N = h*w tokens of D = C dims.

Quantization (seed 003 §II-A): the encoder output is bounded to [-A, A], A = 2^(b-1) - 1;
training adds U(-0.5, 0.5) noise, inference rounds.  The decoder sees q / A.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import CNN_STAGES, NetConfig, override_config  # noqa: F401  (override_config: the training CLI's)
from .layers import GDN, DynamicScale, Imputer, NeighbourBroadcast, WindowBlock


def build_net(config: NetConfig) -> nn.Module:
    if config.impute and config.rescale:
        raise ValueError("impute and rescale are alternatives (imputed latents are full scale)")
    if config.arch == "cnn":
        return CNNNet(config)
    if config.arch == "swin":
        return SwinNet(config)
    raise ValueError(f"unknown architecture {config.arch!r}")


def rescale_received(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Inverted dropout at the receiver: z * (elements / kept elements), per image."""
    m = mask.to(z.dtype)
    kept = m.flatten(1).sum(1).clamp_min(1.0)
    return z * (m[0].numel() / kept)[:, None, None, None]


class _Bounded(nn.Module):
    """Shared quantization / training plumbing."""

    config: NetConfig

    def quantize(self, y: torch.Tensor, noise: bool) -> torch.Tensor:
        step = self.config.quant_step
        if noise:
            return y + torch.empty_like(y).uniform_(-0.5 * step, 0.5 * step)
        return torch.round(y / step) * step

    def quantize_straight_through(self, y: torch.Tensor) -> torch.Tensor:
        """What the receiver gets (rounded to the step, clamped to the bit width) in the forward
        pass, with the identity's gradient (Minnen & Singh 2020's "mixed" quantization: the rate
        proxy still sees noise, the decoder trains on the values it will be sent)."""
        step, a = self.config.quant_step, self.config.amplitude
        sent = torch.round(y / step).clamp(-a, a) * step
        return y + (sent - y).detach()

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, noise: bool = True
    ) -> torch.Tensor:
        """Training/eval pass: image in [0,1] -> reconstruction; mask (B,C,h,w) of kept elements."""
        y = self.quantize(self.analysis(x), noise)
        if mask is not None:
            y = y * mask
        return self.synthesis(y, mask)


class CNNNet(_Bounded):
    """Ballé-style convolutional autoencoder: stride-2 5x5 convs with GDN, four (16x down) or
    three (8x down: four times the latent positions, for high rates)."""

    # Tiled inference (LearnedCodec): the context, in latent positions on each side, that makes
    # a tile's interior equal the untiled result.  analysis: latent i depends on pixels
    # 16i-30..16i+30 (four 5x5 stride-2 convs; 8i-14..8i+14 with three); synthesis: pixel o of a
    # tile is exact when latents reach 30 pixels above it and 38 below (four 5x5 stride-2
    # transposed convs; 14 and 22 with three): the same halos in latent positions hold for both.
    # GDN, Dynamic Scale (its gains depend on a constant condition, not on the map) and
    # Broadcast act per position; the only map-wide statistic, the rescale's count of received
    # elements, is taken over the whole latent by `decoder_input` before tiling.
    tile_align = 1
    tile_wraps = False
    analysis_halo = 2
    synthesis_halo = 3

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        stages = CNN_STAGES.get(config.down)
        if stages is None:
            raise ValueError(f"the cnn codec downsamples by {' or '.join(map(str, CNN_STAGES))}, not {config.down}")
        self.config = config
        n, c = config.hidden, config.latent_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(3, n, 5, 2, 2),
            *(layer for _ in range(stages - 1) for layer in (GDN(n), nn.Conv2d(n, n, 5, 2, 2))),
        )
        if config.sem_scale:
            self.head = DynamicScale(n, c)
        else:
            self.head = nn.Conv2d(n, c, 1)
        self.broadcast = NeighbourBroadcast(c, config.broadcast_k) if config.sem_broadcast else None
        self.impute = Imputer(c) if config.impute else None
        cin = 2 * c if config.masked else c
        self.decoder = nn.Sequential(
            *(layer for i in range(stages - 1)
              for layer in (nn.ConvTranspose2d(cin if i == 0 else n, n, 5, 2, 2, 1), GDN(n, inverse=True))),
            nn.ConvTranspose2d(n, 3, 5, 2, 2, 1),
        )

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        return self._latent(self.encoder(x - 0.5))

    def tile_analysis(self, x: torch.Tensor) -> torch.Tensor:
        """`analysis` of one tile in tiled inference (inference only): the same math on a
        channels-last map, whose convolutions are faster here, with GDN as `lean_gdn`; equal
        to `analysis` up to float rounding."""
        x = (x - 0.5).contiguous(memory_format=torch.channels_last)
        return self._latent(lean_layers(self.encoder, x))

    def _latent(self, f: torch.Tensor) -> torch.Tensor:
        """Encoder features -> latent in quantizer steps, bounded to [-A, A]."""
        if self.config.sem_scale:
            u = self.head(f)  # tanh-bounded already
        else:
            u = self.head(f).clamp(-1.0, 1.0)
        if self.broadcast is not None:
            u = self.broadcast(u)
        return u * self.config.amplitude

    def synthesis(self, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """y: received latent (lost elements zero); mask: (B,C,h,w) received elements, or
        None when everything arrived."""
        return self.decode_map(self.decoder_input(y, mask))

    def decoder_input(self, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """What the decoder convolves, (B, C or 2C, h, w): the latent in its own units after the
        receiver's handling of lost elements, which may use statistics of the whole map."""
        z = y / self.config.amplitude
        if mask is not None and self.impute is not None:
            z = self.impute(z, mask)
        if mask is not None and self.config.rescale:
            z = rescale_received(z, mask)
        if self.config.masked:
            m = torch.ones_like(z) if mask is None else mask.to(z.dtype)
            z = torch.cat([z, m * 2.0 - 1.0], dim=1)
        return z

    def decode_map(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C', h, w) decoder input -> (B, 3, down h, down w) image; local (see synthesis_halo)."""
        return self.decoder(z) + 0.5

    def tile_decode_map(self, z: torch.Tensor) -> torch.Tensor:
        """`decode_map` of one tile in tiled inference, lean like `tile_analysis`."""
        return lean_layers(self.decoder, z.contiguous(memory_format=torch.channels_last)) + 0.5


class _ToTokens(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,C,H,W) -> (B,H,W,C)
        return x.permute(0, 2, 3, 1)


class _ToMap(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,H,W,C) -> (B,C,H,W)
        return x.permute(0, 3, 1, 2)


class SwinNet(_Bounded):
    """A small windowed-attention (Swin-like) token codec: stages at /4, /8, /16 with two
    window blocks each (window 8, alternating shift); tokens at /16 carry D dims."""

    # Tiled inference (LearnedCodec): tiles start on the /16 window grid (8 tokens = 128
    # pixels, which also keeps the /8 and /4 windows in place).  A pair of blocks reaches 14
    # tokens at each stage, up to 24.5 latent positions over the three, but the influence
    # fades sooner: with 16 positions of context for analysis and 8 for synthesis the tiled
    # latent and image equal the untiled ones (a few latents in 10^5 differ by float rounding;
    # 8 for analysis changed 2-5 %; measured on 3 photographs, and in
    # tests/codecs/test_codec_tiling.py).  The shifted windows roll around the map's border,
    # so its two ends see each other: a tile at one end also gets context from the other
    # (`tile_wraps`); without it the border differed by up to 50 grey levels.
    tile_align = 8
    tile_wraps = True
    analysis_halo = 16
    synthesis_halo = 8

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        if config.down != 16:
            raise ValueError("the swin codec downsamples by 16")
        if config.impute:
            raise ValueError("impute is implemented for the cnn codec only")
        self.config = config
        d3 = config.hidden
        d1, d2 = d3 // 2, (3 * d3) // 4
        heads = lambda d: max(1, d // 32)  # noqa: E731
        w = 8

        def stage(d: int) -> list[nn.Module]:
            return [WindowBlock(d, heads(d), w, False), WindowBlock(d, heads(d), w, True)]

        self.embed = nn.Conv2d(3, d1, 4, 4)
        self.enc1 = nn.Sequential(_ToTokens(), *stage(d1), _ToMap())
        self.merge2 = nn.Conv2d(d1, d2, 2, 2)
        self.enc2 = nn.Sequential(_ToTokens(), *stage(d2), _ToMap())
        self.merge3 = nn.Conv2d(d2, d3, 2, 2)
        self.enc3 = nn.Sequential(_ToTokens(), *stage(d3))
        self.head = nn.Sequential(nn.LayerNorm(d3), nn.Linear(d3, config.latent_channels))
        cin = 2 * config.latent_channels if config.masked else config.latent_channels
        self.unhead = nn.Linear(cin, d3)
        self.dec3 = nn.Sequential(*stage(d3), _ToMap())
        self.up2 = nn.Sequential(nn.Conv2d(d3, 4 * d2, 1), nn.PixelShuffle(2))
        self.dec2 = nn.Sequential(_ToTokens(), *stage(d2), _ToMap())
        self.up1 = nn.Sequential(nn.Conv2d(d2, 4 * d1, 1), nn.PixelShuffle(2))
        self.dec1 = nn.Sequential(_ToTokens(), *stage(d1), _ToMap())
        self.out = nn.Sequential(
            nn.Conv2d(d1, 4 * 32, 3, 1, 1), nn.PixelShuffle(2), nn.GELU(),
            nn.Conv2d(32, 4 * 3, 3, 1, 1), nn.PixelShuffle(2),
        )

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        h = self.enc1(self.embed(x - 0.5))
        h = self.enc2(self.merge2(h))
        t = self.enc3(self.merge3(h))  # (B, gh, gw, d3)
        u = torch.tanh(self.head(t))
        return u.permute(0, 3, 1, 2) * self.config.amplitude

    def tile_analysis(self, x: torch.Tensor) -> torch.Tensor:
        """`analysis` of one tile in tiled inference (attention needs no other path)."""
        return self.analysis(x)

    def synthesis(self, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode_map(self.decoder_input(y, mask))

    def decoder_input(self, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The latent in the decoder's units, (B, C or 2C, h, w), after the receiver's handling
        of lost elements (the rescale counts them over the whole map)."""
        z = y / self.config.amplitude
        if mask is not None and self.config.rescale:
            z = rescale_received(z, mask)
        if self.config.masked:
            m = torch.ones_like(z) if mask is None else mask.to(z.dtype)
            z = torch.cat([z, m * 2.0 - 1.0], dim=1)
        return z

    def decode_map(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C', h, w) decoder input -> (B, 3, 16h, 16w) image."""
        t = self.unhead(z.permute(0, 2, 3, 1))
        h = self.dec3(t)
        h = self.dec2(self.up2(h))
        h = self.dec1(self.up1(h))
        return self.out(h) + 0.5

    def tile_decode_map(self, z: torch.Tensor) -> torch.Tensor:
        """`decode_map` of one tile in tiled inference."""
        return self.decode_map(z)


def lean_layers(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` for inference on a channels-last map, with every GDN computed as
    `lean_gdn`; other layers run as they are."""
    for layer in layers:
        x = lean_gdn(layer, x) if isinstance(layer, GDN) else layer(x)
    return x


def lean_gdn(gdn: GDN, x: torch.Tensor) -> torch.Tensor:
    """GDN's x / sqrt(beta + gamma x^2) (or x * sqrt(..), inverse) on a channels-last fp32
    (B, C, H, W) map, for inference only (in place, no autograd): the 1x1 convolution as one
    matrix product over the (pixels, C) view, root and product in place, so no full-size
    temporary is allocated twice (35 % faster than the module at 160x160x128, measured)."""
    b, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(-1, c)  # a view for channels-last
    norm = torch.addmm(gdn.beta**2 + 1e-6, pixels * pixels, (gdn.gamma**2).T)
    if gdn.inverse:
        norm.sqrt_()
    else:
        norm.rsqrt_()
    return norm.mul_(pixels).view(b, h, w, c).permute(0, 3, 1, 2)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad a (B, 3, H, W) batch on the bottom/right to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)
