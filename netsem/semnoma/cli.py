"""`netsem noma-send`, `noma-recv`, `noma-simulate`, `noma-eval` (seed 004, semantic NOMA uplink)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

AIR_OPTIONS = [
    click.option("--channel", type=click.Choice(["awgn", "rayleigh"]), default="awgn", show_default=True,
                 help="the uplink channel (Rayleigh: one block-fading draw per user and frame, CSI known)"),
    click.option("--snr", type=float, default=10.0, show_default=True,
                 help="received SNR of all users together, dB (user k alone: SNR + 10 log10 of its power share)"),
    click.option("--powers", default="0.8,0.2", show_default=True,
                 help="power coefficients of users 0, 1, ... (near first), positive, summing to 1; K = their count"),
    click.option("--seed", type=int, default=0, show_default=True,
                 help="channel seed: senders, the air (emulate --stage noma) and the base station must agree"),
    click.option("--model", default="student", show_default=True,
                 help="shipped model (student, plain, teacher, snr5, snr15) or a weight file; every end the same"),
]


def air_options(f):
    for option in reversed(AIR_OPTIONS):
        f = option(f)
    return f


def _air(channel: str, snr: float, powers: str, seed: int):
    from netsem.semnoma.config import AirSpec

    try:
        return AirSpec.parse({"channel": channel, "snr": str(snr), "powers": powers, "seed": str(seed)})
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--powers") from None


def _model(name: str):
    from netsem.semnoma.weights import load_model

    try:
        model, _ = load_model(name)
    except (FileNotFoundError, OSError, ValueError, KeyError) as error:
        raise click.BadParameter(str(error).splitlines()[0], param_hint="--model") from None
    if not hasattr(model, "transmit"):
        raise click.BadParameter(f"{name} is a refinement model, not a JSCC", param_hint="--model")
    return model


def _image(path: str, size: int) -> np.ndarray:
    from netsem.pipeline.images import ImageError, load_image
    from netsem.semnoma.images import fit_image

    try:
        image, _ = load_image(path)
        return fit_image(image, size)
    except (ImageError, ValueError) as error:
        raise click.BadParameter(str(error)) from None


def _report(delivered, references: list[np.ndarray] | None, out: str | None, air) -> dict:
    from netsem.metrics import psnr_db, ssim

    users = []
    for k, image in enumerate(delivered.images):
        entry = {"user": k, "power": air.powers[k]}
        if out:
            from PIL import Image

            path = Path(out) / f"frame{delivered.frame_id}-user{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
            entry["image"] = str(path)
        if references is not None:
            entry.update(psnr=round(psnr_db(references[k], image), 3), ssim=round(ssim(references[k], image), 4))
        users.append(entry)
    return {"frame_id": delivered.frame_id, "delivery": delivered.delivery, "datagrams": delivered.datagrams,
            "erased": round(delivered.erased, 4), "users": users}


def _print(report: dict) -> None:
    line = f"frame {report['frame_id']}: {report['delivery']}, {report['datagrams']} superposed datagrams, " \
           f"{report['erased']:.1%} of the symbols erased"
    click.echo(line)
    for user in report["users"]:
        quality = f"PSNR {user['psnr']:.2f} dB, SSIM {user['ssim']:.3f}" if "psnr" in user else "(no --reference)"
        written = f" -> {user['image']}" if "image" in user else ""
        click.echo(f"  user {user['user']} (power {user['power']:g}): {quality}{written}")


@click.command("noma-send")
@click.argument("image")
@click.option("--user", type=click.IntRange(0, 16383), required=True, help="this sender's user index (0 = near)")
@click.option("--to", "destination", required=True, metavar="HOST:PORT",
              help="a `netsem emulate --stage noma` (or the base station)")
@click.option("--frame-id", type=click.IntRange(0, 2**32 - 1), default=1, show_default=True,
              help="the transmission's frame id: the users of one transmission name the same one")
@click.option("--size", type=click.IntRange(4, 1024), default=64, show_default=True,
              help="the image's centre square is resized to SIZE x SIZE (a multiple of 4)")
@click.option("--mtu", type=click.IntRange(200, 65507), default=1200, show_default=True)
@air_options
def noma_send(image, user, destination, frame_id, size, mtu, channel, snr, powers, seed, model):
    """One uplink user: encode IMAGE with the adaptive JSCC for this frame's channel state
    and send its symbols to HOST:PORT. Start one per user, with the same --frame-id, --seed,
    channel options and --model; the emulator's `noma` stage superposes them:

    \b
      netsem noma-recv --listen 127.0.0.1:5600 --reference near.png --reference far.png
      netsem emulate --listen 127.0.0.1:5601 --forward 127.0.0.1:5600 \\
          --stage "noma channel=awgn snr=10 seed=0"
      netsem noma-send near.png --user 0 --to 127.0.0.1:5601
      netsem noma-send far.png --user 1 --to 127.0.0.1:5601
    """
    from netsem.pipeline.cli import endpoint

    address = endpoint(destination)
    air = _air(channel, snr, powers, seed)
    if user >= air.users:
        raise click.BadParameter(f"user {user}: --powers names {air.users} users (0..{air.users - 1})",
                                 param_hint="--user")
    picture = _image(image, size)
    # the options are checked: now the network and torch
    from netsem.pipeline.send import ReceiverUnreachable
    from netsem.semnoma.network import user_datagrams
    from netsem.semnoma.transport import send_user

    datagrams = user_datagrams(_model(model), picture, user, frame_id, air, mtu)
    try:
        send_user(datagrams, address)
    except ReceiverUnreachable as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"user {user}: frame {frame_id}, {size}x{size}, {len(datagrams)} datagrams, "
               f"{sum(map(len, datagrams))} bytes to {destination}")


@click.command("noma-recv")
@click.option("--listen", default="127.0.0.1:5600", show_default=True, metavar="HOST:PORT")
@click.option("--frames", type=click.IntRange(1), default=1, show_default=True, help="stop after this many frames")
@click.option("--idle", type=click.FloatRange(0.1), default=30.0, show_default=True,
              help="give up after this long without a datagram, s")
@click.option("--reference", multiple=True, metavar="IMAGE",
              help="a user's original image for PSNR / SSIM, once per user in user order "
                   "(--reference a.png --reference b.png)")
@click.option("--size", type=click.IntRange(4, 1024), default=64, show_default=True,
              help="as the senders' --size (for --reference)")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="write each user's decoded image here")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="write the frames' reports here")
@air_options
def noma_recv(listen, frames, idle, reference, size, out, json_path, channel, snr, powers, seed, model):
    """The base station: receive the superposed datagrams of the users' transmissions, run SIC
    with each frame's channel state and decode every user's image."""
    from netsem.pipeline.cli import endpoint

    address = endpoint(listen)
    air = _air(channel, snr, powers, seed)
    references = [_image(path, size) for path in reference] or None
    if references is not None and len(references) != air.users:
        raise click.BadParameter(f"{len(references)} references for {air.users} users", param_hint="--reference")
    from netsem.pipeline.udp import run_trio
    from netsem.semnoma.network import BaseStation
    from netsem.semnoma.transport import serve_base_station

    station = BaseStation(_model(model), air)
    reports = []

    def on_frame(delivered) -> None:
        report = _report(delivered, references, out, air)
        reports.append(report)
        _print(report)

    try:
        done = run_trio(serve_base_station, station, address, frames, idle, on_frame)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {listen}: {error.strerror or error}") from None
    stats = station.stats()
    click.echo(f"{done} frame(s); rejected datagrams: {stats['rejected'] or 'none'}")
    if json_path:
        Path(json_path).write_text(json.dumps({"frames": reports, **stats}, indent=1))
    if done < frames:
        sys.exit(1)


@click.command("noma-simulate")
@click.argument("images", nargs=-1, required=True)
@click.option("--netem", default="", help="netem words for the path before the air (loss, delay, ...)")
@click.option("--frame-id", type=click.IntRange(0, 2**32 - 1), default=1, show_default=True)
@click.option("--size", type=click.IntRange(4, 1024), default=64, show_default=True)
@click.option("--mtu", type=click.IntRange(200, 65507), default=1200, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
@air_options
def noma_simulate(images, netem, frame_id, size, mtu, out, json_path, channel, snr, powers, seed, model):
    """The socket path (noma-send x K -> emulate --stage noma -> noma-recv) on a virtual clock:
    one image per user, the same result as over sockets for the same seed."""
    from emulator.grammar import NetemSpecError, parse_netem

    air = _air(channel, snr, powers, seed)
    if len(images) != air.users:
        raise click.BadParameter(f"{len(images)} images for {air.users} users (--powers)", param_hint="IMAGES")
    try:
        parse_netem(netem)
    except NetemSpecError as error:
        raise click.BadParameter(str(error), param_hint="--netem") from None
    pictures = [_image(path, size) for path in images]
    from netsem.semnoma.network import run_offline

    delivered, stats = run_offline(_model(model), pictures, air, frame_id=frame_id, netem=netem, mtu=mtu)
    if delivered is None:
        raise click.ClickException("no superposed datagram reached the base station")
    report = _report(delivered, pictures, out, air)
    _print(report)
    if json_path:
        Path(json_path).write_text(json.dumps({"frames": [report], "air": stats["air"], "rejected": stats["rejected"],
                                               "reassembler": stats["reassembler"]}, indent=1))


@click.command("noma-eval")
@click.option("--schemes", default="oma-teacher,noma,noma-kd,noma-kd-refined,classic", show_default=True)
@click.option("--adaptive", is_flag=True, help="the adaptive-module study instead: one model vs models trained per SNR")
@click.option("--channels", default="awgn,rayleigh", show_default=True)
@click.option("--snrs", default="0,5,10,15,20", show_default=True, help="dB, comma-separated")
@click.option("--count", type=click.IntRange(1), default=64, show_default=True, help="image pairs per point")
@click.option("--size", type=click.IntRange(8, 256), default=32, show_default=True,
              help="crop side, a multiple of 4 (32: CIFAR-sized, 64: the FFHQ stand-in)")
@click.option("--out", type=click.Path(file_okay=False), default="noma-eval", show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None)
def noma_eval(schemes, adaptive, channels, snrs, count, size, out, plot_path):
    """PSNR / SSIM vs SNR for the near and the far user: OMA teacher, NOMA without and with
    distillation, + refinement, and the classic chain with SIC; every scheme meets the same
    channel draws, on crops of photographs never trained on."""
    if size % 4:
        raise click.BadParameter(f"--size {size}: a multiple of 4")
    chans = [c.strip() for c in channels.split(",") if c.strip()]
    if not chans or any(c not in ("awgn", "rayleigh") for c in chans):
        raise click.BadParameter("--channels: awgn and/or rayleigh")
    try:
        snr_list = [float(s) for s in snrs.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"--snrs: comma-separated numbers, got {snrs!r}") from None
    from netsem.semnoma import evaluate as ev

    chosen = list(ev.ADAPTIVE) if adaptive else [s.strip() for s in schemes.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in ev.SCHEMES and s not in ev.ADAPTIVE]
    if unknown:
        known = ", ".join([*ev.SCHEMES, *ev.ADAPTIVE])
        raise click.BadParameter(f"unknown scheme(s) {', '.join(unknown)} (known: {known})")
    points = ev.evaluate(chosen, chans, snr_list, count=count, size=size, log=click.echo)
    ev.write(points, Path(out))
    text = ev.table(points, chosen, "psnr") + "\n" + ev.table(points, chosen, "ssim")
    (Path(out) / "table.md").write_text(text + "\n")
    click.echo(text)
    if plot_path:
        ev.plot(points, chosen, Path(plot_path), f"Seed 004 semantic NOMA uplink, {size}x{size} crops, {count} pairs")
        click.echo(f"plot: {plot_path}")
