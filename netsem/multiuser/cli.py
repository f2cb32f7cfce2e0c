"""`netsem multicast` and `netsem multiuser-eval` (seed 000)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

DEFAULT_SNRS = "-4,-2,0,2,4,6,8,10,12,14,16,18,20"


def _user_values(items: tuple[str, ...], what: str) -> dict[int, str]:
    """('3=loss random 20%', ...) -> {3: 'loss random 20%'}."""
    out = {}
    for item in items:
        user, sep, value = item.partition("=")
        if not sep or not user.strip().isdigit():
            raise click.BadParameter(f"{item!r}: write USER=VALUE, e.g. 3={what}")
        out[int(user)] = value.strip()
    return out


def _load_images(paths: tuple[str, ...], users: int, size: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """The users' images: given files (centre-cropped to size x size; cycled when fewer than
    users), or crops of the evaluation photographs (never trained on)."""
    from netsem.multiuser.data import TEST_SEED, crop_batch, eval_photos

    if not paths:
        crops = crop_batch(eval_photos(), users, np.random.default_rng([TEST_SEED, seed, 99]), size=size)
        return crops, [f"crop {u} of the evaluation photographs" for u in range(users)]
    from netsem.pipeline.images import ImageError, load_image

    images, labels = [], []
    for u in range(users):
        try:
            image, label = load_image(paths[u % len(paths)])
        except ImageError as error:
            raise click.BadParameter(str(error)) from None
        h, w = image.shape[:2]
        if min(h, w) < size:
            raise click.BadParameter(f"{label} is {w}x{h}, smaller than --size {size}")
        top, left = (h - size) // 2, (w - size) // 2
        images.append(image[top : top + size, left : left + size])
        labels.append(label)
    return np.stack(images), labels


@click.command("multicast")
@click.argument("images", nargs=-1)
@click.option("--model", default="c0.2", show_default=True, help="shipped model (c0.2, c0.1, u0.2, private) or a weight file")
@click.option("--groups", type=click.IntRange(1, 254), default=2, show_default=True, help="G: users = G x K (K from the model)")
@click.option("--size", type=click.IntRange(32, 1024), default=64, show_default=True,
              help="image side, a multiple of 32: each 32x32 tile is one image of the model (1024 symbols)")
@click.option("--phy", default="awgn snr 15dB", show_default=True, help="every receiver's channel: awgn | rician 1 | rayleigh, snr X")
@click.option("--user-phy", multiple=True, help="USER=SPEC: one receiver's channel (repeatable)")
@click.option("--netem", default="", help="every receiver's impairments (netem words)")
@click.option("--user-netem", multiple=True, help="USER=WORDS: one receiver's netem words (repeatable)")
@click.option("--join", multiple=True, help="USER=GROUP: that receiver joins another group's multicast address")
@click.option("--transport", type=click.Choice(["udp", "offline"]), default="udp", show_default=True,
              help="udp: real sockets on 127.0.0.1, one multicast and one unicast socket per receiver; "
                   "offline: the same sans-I/O cores on a virtual clock (same seed, same result)")
@click.option("--seed", type=int, default=0, show_default=True, help="clustering, interleaving, losses, channel noise")
@click.option("--mtu", type=click.IntRange(200, 65507), default=1200, show_default=True, help="UDP payload bytes per datagram")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="multicast port (0: a free one)")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="write each user's reconstruction here")
@click.option("--pcap", type=click.Path(dir_okay=False), default=None,
              help="write what the sender sent as pcapng (Wireshark: netsem.stream_kind, netsem.stream_index)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def multicast(images, model, groups, size, phy, user_phy, netem, user_netem, join, transport, seed, mtu, port, out,
              pcap, as_json):
    """Send G x K users' images from one sender (seed 000): each group's common features once
    to a UDP multicast group on loopback, private features unicast to each user's receiver.

    IMAGES: files (centre-cropped to --size, cycled over the users) or none for crops of the
    evaluation photographs. Prints, per user, PSNR / SSIM / MS-SSIM, the bytes and datagrams
    accepted on its common and private streams, what it rejected, and the bytes multicast saved."""
    from emulator.grammar import NetemSpecError
    from netsem.multiuser.network import UserLink, run_multicast
    from netsem.multiuser.weights import load_model
    from netsem.phy.spec import PhySpecError

    if size % 32:
        raise click.BadParameter(f"--size {size} is not a multiple of 32")
    try:
        net, _ = load_model(model)
    except (OSError, ValueError) as error:
        raise click.BadParameter(f"--model {model}: {error}") from None
    users = groups * net.config.group_size
    phys, netems = _user_values(user_phy, "rayleigh snr 8"), _user_values(user_netem, "loss random 20%")
    joins = {u: int(g) for u, g in _user_values(join, "1").items() if g.isdigit()}
    for name, values in (("--user-phy", phys), ("--user-netem", netems), ("--join", joins)):
        if any(u >= users for u in values):
            raise click.BadParameter(f"{name}: users are 0..{users - 1}")
    if any(g >= groups for g in joins.values()) or len(joins) != len(join):
        raise click.BadParameter(f"--join: write USER=GROUP with a group in 0..{groups - 1}")
    try:
        links = {u: UserLink.parse(netems.get(u, netem), phys.get(u, phy)) for u in range(users)}
    except (PhySpecError, NetemSpecError, ValueError) as error:
        raise click.BadParameter(str(error)) from None
    pictures, labels = _load_images(images, users, size, seed)
    report = run_multicast(net, pictures, groups, links, seed=seed, mtu=mtu, transport=transport, joins=joins,
                           port=port)
    if pcap:
        import time

        from netsem.multiuser.transport import write_capture

        packets = write_capture(pcap, report.transmission, port=port or 47474, start_ns=time.time_ns())
        click.echo(f"capture: {pcap} ({packets} datagrams as sent)", err=True)
    if out:
        from PIL import Image

        Path(out).mkdir(parents=True, exist_ok=True)
        for u, image in report.reconstructions.items():
            Image.fromarray(image).save(Path(out) / f"user{u:02d}.png")
    summary = {
        "model": model, "transport": transport, "users": users, "groups": report.groups, "seed": seed,
        "multicast_common_bytes": report.multicast_bytes, "common_bytes_if_unicast": report.unicast_common_bytes,
        "bytes_saved_by_multicast": report.saved_bytes, "private_bytes": report.private_bytes,
        "common_bytes_received_by_all": report.received_common_bytes,
        "wire_bytes": report.multicast_bytes + report.private_bytes,
        "wire_bytes_if_unicast": report.unicast_common_bytes + report.private_bytes,
    }
    if as_json:
        click.echo(json.dumps({**summary, "per_user": [vars(r) | {"image": labels[r.user]} for r in report.users]},
                              default=float))
        return
    click.echo(f"{users} users in {len(report.groups)} groups {report.groups}, model {model}, {transport}, "
               f"{size}x{size} images ({(size // 32) ** 2} tiles each)")
    click.echo(f"{'user':>4} {'grp':>3} {'join':>4} {'channel':>16} {'PSNR':>6} {'SSIM':>6} {'MS-SSIM':>7} "
               f"{'common B':>9} {'dgrams':>6} {'private B':>9} {'dgrams':>6}  rejected / netem")
    for r in report.users:
        psnr = "-" if r.psnr_db is None else f"{r.psnr_db:.2f}"
        ssim = "-" if r.ssim is None else f"{r.ssim:.3f}"
        msssim = "-" if r.msssim is None else f"{r.msssim:.3f}"
        extra = " ".join(f"{k}={v}" for k, v in r.rejected.items())
        click.echo(f"{r.user:>4} {r.group:>3} {r.joined:>4} {r.channel + ' ' + format(r.snr_db, 'g') + ' dB':>16} "
                   f"{psnr:>6} {ssim:>6} {msssim:>7} {r.common_bytes:>9} {r.common_datagrams:>6} "
                   f"{r.private_bytes:>9} {r.private_datagrams:>6}  {extra} {r.netem}".rstrip())
    click.echo(f"common features: {report.multicast_bytes} bytes multicast once per group, "
               f"{report.received_common_bytes} bytes received by all members together; unicast to each member "
               f"would take {report.unicast_common_bytes}: multicast saved {report.saved_bytes} bytes "
               f"({report.saved_bytes / max(1, summary['wire_bytes_if_unicast']):.1%} of what all-unicast puts on the wire)")
    click.echo(f"private features: {report.private_bytes} bytes unicast")


@click.command("multiuser-eval")
@click.option("--models", default="c0.2,c0.1,u0.2,private", show_default=True, help="shipped names or weight files")
@click.option("--channels", default="awgn,rician,rayleigh", show_default=True)
@click.option("--snr", "snr_text", default=DEFAULT_SNRS, show_default=True, help="SNRs in dB")
@click.option("--batches", type=click.IntRange(1, 1000), default=10, show_default=True, help="test batches of 10 x 5 users")
@click.option("--classic-images", type=click.IntRange(0, 10000), default=100, show_default=True,
              help="test images for the classic chain (0: leave it out)")
@click.option("--classic-from", type=click.Path(exists=True, dir_okay=False), default=None,
              help="take the classic chain's points from an earlier results CSV instead of recomputing them")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default="runs/mu/eval.csv", show_default=True)
@click.option("--figures", default="docs/seed000_{channel}.png", show_default=True, help="'' for none")
def multiuser_eval(models, channels, snr_text, batches, classic_images, classic_from, seed, csv_path, figures):
    """Seed 000's Figs. 4-6: PSNR and MS-SSIM vs SNR per channel, every scheme, the classic chain."""
    import platform

    import torch

    from netsem.multiuser.channel import CHANNELS
    from netsem.multiuser.classic import classic_curves
    from netsem.multiuser.data import test_batches
    from netsem.multiuser.evaluate import (
        CHANNEL_TITLES,
        Point,
        evaluate_model,
        plot,
        read_csv,
        table,
        write_csv,
    )
    from netsem.multiuser.weights import load_model

    try:
        snrs = [float(s) for s in snr_text.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"--snr {snr_text!r}: numbers separated by commas") from None
    chosen = tuple(c for c in channels.split(",") if c)
    if not chosen or any(c not in CHANNELS for c in chosen):
        raise click.BadParameter(f"--channels: choose from {', '.join(CHANNELS)}")
    names = [m for m in models.split(",") if m]
    loaded = {}
    for name in names:
        try:
            loaded[name] = load_model(name)[0]
        except (OSError, ValueError) as error:
            raise click.BadParameter(f"--models {name}: {error}") from None
    group_size = {m.config.group_size for m in loaded.values()}
    size = group_size.pop() if len(group_size) == 1 else 5
    groups = 10
    test = test_batches(batches, groups * size)
    points: list[Point] = []
    for name, model in loaded.items():
        click.echo(f"{name}: {model.config.to_json()}")
        points += evaluate_model(name, model, test, chosen, snrs, groups, seed, log=click.echo)
    notes = []
    if classic_from:
        points += [p for p in read_csv(Path(classic_from)) if p.scheme == "classic" and p.channel in chosen
                   and p.snr_db in snrs]
        notes.append(f"classic chain's points from {classic_from}")
    elif classic_images:
        images = np.concatenate(test)[:classic_images]
        classic, notes = classic_curves(images, chosen, snrs, seed=seed, log=click.echo)
        points += [Point("classic", p.channel, p.snr_db, p.psnr, p.msssim, len(images), p.setting) for p in classic]
    if not points:
        raise click.UsageError("nothing to evaluate: no --models and no classic chain")
    run = {"command": " ".join(sys.argv), "models": names, "batches": batches, "classic_images": classic_images,
           "seed": seed, "versions": {"python": platform.python_version(), "torch": torch.__version__,
                                      "numpy": np.__version__}}
    write_csv(points, Path(csv_path), run)
    for note in notes:
        click.echo(f"note: {note}")
    for channel in chosen:
        click.echo(f"\n{CHANNEL_TITLES[channel]}: PSNR (dB)\n{table(points, channel)}")
        click.echo(f"\n{CHANNEL_TITLES[channel]}: MS-SSIM\n{table(points, channel, 'msssim')}")
        if figures:
            path = Path(figures.format(channel=channel))
            plot(points, channel, path, f"{CHANNEL_TITLES[channel]}: {batches * groups * size} test images 32x32, "
                                        "1024 symbols per image")
            click.echo(f"figure: {path}")
    click.echo(f"results: {csv_path}")
