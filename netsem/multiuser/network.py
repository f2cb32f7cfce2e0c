"""One multi-user downlink over the network: encode, group, packetize, send (sockets or the
virtual clock), receive per user, apply each user's channel, decode, measure.

How channel noise meets packets: the sender puts the transmitted symbols (unit power) on the
wire quantized to 12 bits; each receiver's path is an `emulator.link.Link` with that
receiver's netem words (loss, delay, corruption...), after which a datagram either arrived or
not; the receiver then applies its own analog channel (its channel type and SNR, one
block-fading draw per 32x32 tile, shared by the tile's common and private symbols) to the
symbols that arrived, and symbols of lost datagrams are erasures (0 at the decoder). We apply
the analog channel at the receiver, after the packets, rather than as a stage inside the link
because (1) it acts on a whole tile's symbols with one fading draw, exactly the channel the
model was trained and evaluated with, so the socket run and `multiuser-eval` measure the same
thing; (2) the common datagrams are the very same bytes for every member of a group (they are
multicast once), while the noise each member sees is its own (the seed's (4)); (3) a stage
inside the link would see datagrams, i.e. slices of a tile, and would have to unpack, perturb
and repack quantized values. Noise and erasure commute per symbol, so the order costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from emulator.grammar import NetemSpec, parse_netem
from netsem.metrics import psnr_db, ssim
from netsem.multiuser.data import to_tensor, to_uint8
from netsem.multiuser.model import Gssma
from netsem.multiuser.msssim import ms_ssim
from netsem.multiuser.scheme import encode, receive_and_decode, tiles_of, untile
from netsem.multiuser.session import (
    Received,
    ReceiverCore,
    Transmission,
    plan_transmission,
    simulate_offline,
)
from netsem.multiuser.streams import (
    codec_id,
    common_stream,
    describe_stream,
    model_tag,
    private_stream,
)
from netsem.phy.spec import parse_phy_spec


@dataclass(frozen=True)
class UserLink:
    """One receiver's path: its netem words and its channel."""

    netem: str = ""
    channel: str = "awgn"
    snr_db: float = 15.0

    @classmethod
    def parse(cls, netem: str, phy: str) -> UserLink:
        """`phy`: the PHY grammar's channel and SNR words (`rayleigh snr 8dB`; single antenna)."""
        words = phy.lower().split()
        spec = parse_phy_spec(phy if "siso" in words or "mimo" in words else f"siso {phy}")
        if (spec.nt, spec.nr) != (1, 1):
            raise ValueError(f"{phy!r}: the multi-user downlink is single-antenna (siso)")
        if spec.channel == "rician" and spec.k_factor != 1.0:
            raise ValueError(f"{phy!r}: the Rician channel here has factor 1 (seed 000); write 'rician 1'")
        parse_netem(netem)  # raises NetemSpecError naming the bad word
        return cls(netem, spec.channel, spec.snr_db)

    @property
    def netem_spec(self) -> NetemSpec:
        return parse_netem(self.netem)


@dataclass
class UserReport:
    user: int
    group: int
    joined: int  # the group whose multicast address its receiver joined
    streams: str  # its two stream ids and what they say
    channel: str
    snr_db: float
    netem: str
    decoded: bool
    psnr_db: float | None
    ssim: float | None
    msssim: float | None
    common_bytes: int  # accepted datagram bytes (headers included) on its group's common stream
    private_bytes: int
    common_datagrams: str  # "accepted/sent"
    private_datagrams: str
    common_symbols_erased: float  # share
    private_symbols_erased: float
    rejected: dict = field(default_factory=dict)
    kernel_drops: int = 0


@dataclass
class MulticastReport:
    users: list[UserReport]
    groups: list[list[int]]
    multicast_bytes: int  # common datagrams' bytes the sender sent once per group (udp: counted at its socket)
    unicast_common_bytes: int  # what sending them to every member would have cost
    private_bytes: int
    received_common_bytes: int  # what all receivers together accepted on common streams
    transport: str
    reconstructions: dict[int, np.ndarray] = field(repr=False, default_factory=dict)
    transmission: Transmission | None = field(repr=False, default=None)  # the sender's datagrams

    @property
    def saved_bytes(self) -> int:
        return self.unicast_common_bytes - self.multicast_bytes


def user_generator(seed: int, user: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, user, 7]).generate_state(1)[0]))


@torch.no_grad()
def run_multicast(model: Gssma, images: np.ndarray, groups: int, links: dict[int, UserLink], *, seed: int = 0,
                  mtu: int = 1200, transport: str = "udp", joins: dict[int, int] | None = None, port: int = 0,
                  frame_id: int = 1) -> MulticastReport:
    """`images` (users, H, W, 3) uint8, H and W multiples of 32; one transmission of them."""
    users, height, width = images.shape[:3]
    config = model.config
    tiles = tiles_of(to_tensor(images))
    encoded = encode(model, tiles, users, groups, cluster_seed=seed)
    group_of = encoded.group_of
    kb = model_tag(config.to_json())
    transmission = plan_transmission(
        None if encoded.common is None else encoded.common.numpy(), encoded.private.numpy(), encoded.groups,
        tiles=encoded.tiles, image_size=(height, width), kb_version=kb, frame_id=frame_id, mtu=mtu, seed=seed)
    joins = {u: int(group_of[u]) for u in range(users)} | (joins or {})
    cores = {u: ReceiverCore(u, int(group_of[u]), netem=links[u].netem_spec, seed=seed * 1009 + u, codec_id=codec_id(),
                             kb_version=kb, common_symbols=config.common_symbols,
                             private_symbols=config.private_symbols, expects_common=not config.private_only)
             for u in range(users)}
    drops = {u: 0 for u in range(users)}
    multicast_bytes, private_bytes = transmission.common_bytes, transmission.private_bytes
    if transport == "offline":
        received = simulate_offline(transmission, cores, joins=joins)
    elif transport == "udp":
        from netsem.multiuser.transport import run_session
        from netsem.pipeline.udp import run_trio

        received, sent, drops = run_trio(lambda: run_session(transmission, cores, joins=joins, port=port))
        multicast_bytes, private_bytes = sent.bytes_multicast, sent.bytes_unicast
    else:
        raise ValueError(f"transport {transport!r}: udp or offline")
    reports, recons = [], {}
    for u in range(users):
        got = [r for r in received.get(u, []) if r.frame_id == frame_id]
        link = links[u]
        report = _user_report(u, int(group_of[u]), joins[u], link, cores[u], transmission, drops[u])
        if got:
            image = decoded_image(model, got[0], link, seed, u)
            report.decoded = True
            report.psnr_db, report.ssim = psnr_db(images[u], image), ssim(images[u], image)
            report.msssim = float(ms_ssim(images[u], image))
            report.common_symbols_erased = float(got[0].common_erased.mean()) if got[0].common is not None else 0.0
            report.private_symbols_erased = float(got[0].private_erased.mean())
            recons[u] = image
        reports.append(report)
    return MulticastReport(
        users=reports, groups=encoded.groups.tolist(), multicast_bytes=multicast_bytes,
        unicast_common_bytes=transmission.common_bytes_if_unicast, private_bytes=private_bytes,
        received_common_bytes=sum(r.common_bytes for r in reports), transport=transport, reconstructions=recons,
        transmission=transmission)


@torch.no_grad()
def clean_path_session(model: Gssma, images: np.ndarray, groups: int, *, seed: int, drop_common: int | None = None,
                       drop_private: int | None = None, joins: dict[int, int] | None = None,
                       extra: dict[int, list[tuple[str, bytes]]] | None = None
                       ) -> tuple[Transmission, dict[int, ReceiverCore], dict[int, Received]]:
    """One transmission of 32x32 `images` over the offline session with every path clean,
    after the first datagram of group `drop_common`'s common stream and of user
    `drop_private`'s private stream are taken out (None: nothing); `joins` and `extra` as in
    `simulate_offline`. Returns the sender's datagrams, the receivers and what each received."""
    users = images.shape[0]
    encoded = encode(model, tiles_of(to_tensor(images)), users, groups, cluster_seed=seed)
    kb = model_tag(model.config.to_json())
    transmission = plan_transmission(encoded.common.numpy(), encoded.private.numpy(), encoded.groups, tiles=1,
                                     image_size=(32, 32), kb_version=kb, frame_id=1, mtu=1200, seed=seed)
    if drop_common is not None:
        del transmission.common[drop_common][0]
    if drop_private is not None:
        del transmission.private[drop_private][0]
    cores = {u: ReceiverCore(u, transmission.group_of(u), netem=parse_netem(""), seed=u, codec_id=codec_id(),
                             kb_version=kb, common_symbols=model.config.common_symbols,
                             private_symbols=model.config.private_symbols) for u in range(users)}
    got = simulate_offline(transmission, cores, joins=joins, extra=extra)
    return transmission, cores, {u: received for u, (received,) in got.items()}


@torch.no_grad()
def decoded_image(model: Gssma, received: Received, link: UserLink, seed: int, user: int) -> np.ndarray:
    """A user's reconstruction (H, W, 3) uint8 from what its receiver got, its channel drawn as
    `run_multicast` draws it."""
    recon = _decode(model, received, link, user_generator(seed, user))
    return to_uint8(untile(recon, *received.image_size))[0]


def _decode(model: Gssma, got: Received, link: UserLink, generator: torch.Generator) -> torch.Tensor:
    common = None if got.common is None else torch.from_numpy(got.common)
    erased_common = None if got.common_erased is None else torch.from_numpy(got.common_erased)
    return receive_and_decode(model, common, torch.from_numpy(got.private), link.channel, link.snr_db, generator,
                              erased_common, torch.from_numpy(got.private_erased))


def _user_report(user: int, group: int, joined: int, link: UserLink, core: ReceiverCore, transmission: Transmission,
                 drops: int) -> UserReport:
    sent_common = len(transmission.common.get(group, []))
    sent_private = len(transmission.private[user])
    streams = ", ".join(f"{sid:#06x} {describe_stream(sid)}" for sid in (common_stream(group), private_stream(user)))
    return UserReport(
        user=user, group=group, joined=joined, streams=streams, channel=link.channel, snr_db=link.snr_db, netem=link.netem,
        decoded=False, psnr_db=None, ssim=None, msssim=None,
        common_bytes=core.bytes_in["common"], private_bytes=core.bytes_in["private"],
        common_datagrams=f"{core.datagrams_in['common']}/{sent_common}",
        private_datagrams=f"{core.datagrams_in['private']}/{sent_private}",
        common_symbols_erased=1.0, private_symbols_erased=1.0,
        rejected={**core.rejected, **{f"reassembler_{k}": v for k, v in
                                      core.reassembler.stats()["datagrams_rejected"].items()}},
        kernel_drops=drops)
