"""`netsem seb-sequence` (KB update mode over UDP) and `netsem seb-eval` (Fig. 8 structure), seed 001."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from netsem.seb.data import sequence_groups


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{what}: comma-separated numbers, got {text!r}") from None


def _named_images(paths: tuple[str, ...], size: int, crops: int, seed: int) -> tuple[list[tuple[str, np.ndarray]], list[int]]:
    """Given files (each one message, in order) or the three-group changing-content sequence."""
    if not paths:
        groups = sequence_groups(size=size, crops=crops, seed=seed)
        named = [item for group in groups for item in group]
        return named, [g for g, group in enumerate(groups) for _ in group]
    from netsem.pipeline.images import ImageError, load_image

    named = []
    for path in paths:
        try:
            image, label = load_image(path)
        except ImageError as error:
            raise click.BadParameter(str(error)) from None
        named.append((label, image))
    return named, [0] * len(named)


@click.command("seb-sequence")
@click.argument("images", nargs=-1)
@click.option("--updates/--no-updates", default=True, show_default=True,
              help="KB update mode: the sender updates its Sebs when eq. 5's distortion passes the threshold and "
                   "sends each update (msg_type KB_UPDATE) ahead of the next frames")
@click.option("--trigger", type=click.FloatRange(0), default=1.0, show_default=True,
              help="ask for an update when a message's eq. 5 distortion passes this x the KB's 90th-percentile "
                   "training photograph's (0: after every message)")
@click.option("--repeat", type=click.IntRange(1, 16), default=2, show_default=True,
              help="frames each update rides ahead of (its loss survival: repetition)")
@click.option("--snapshot-every", type=click.IntRange(0), default=0, show_default=True,
              help="also send the whole KB ahead of every N-th message, so a receiver that lost an update catches up "
                   "(0: never; a snapshot is ~60 kB)")
@click.option("--transport", type=click.Choice(["udp", "offline"]), default="udp", show_default=True,
              help="udp: a real socket pair on 127.0.0.1; offline: the same cores on a virtual clock (same result)")
@click.option("--netem", default="", help="impairments between sender and receiver (netem words, e.g. 'loss 5%')")
@click.option("--phy", default="", help="PHY stage for every datagram, e.g. 'siso awgn snr 3dB ldpc 2/3 qpsk' (without siso: 2x2 MIMO)")
@click.option("--phy-important", default="", help="PHY stage for importance-1 datagrams (message-wise UEP), "
                                                   "e.g. 'siso awgn snr 3dB ldpc 1/2 qpsk'")
@click.option("--uep", type=click.Choice(["saliency", "random", "none"]), default="saliency", show_default=True,
              help="which regions are importance 1: the most salient half, a random half, or none")
@click.option("--protect", type=click.Choice(["none", "dup"]), default="none", show_default=True,
              help="packet-level UEP: dup sends every importance-1 datagram twice")
@click.option("--kb", "kb_path", type=click.Path(dir_okay=False), default=None,
              help="knowledge base both ends start from (.safetensors with its .json twin; default: the shipped version 1)")
@click.option("--save-kb", type=click.Path(dir_okay=False), default=None,
              help="write the receiver's KB at the end here (safetensors + JSON): the next run can start from it")
@click.option("--size", type=click.IntRange(64, 2048), default=256, show_default=True,
              help="crop side of the built-in sequence's messages")
@click.option("--crops", type=click.IntRange(1, 20), default=3, show_default=True, help="crops per photograph (built-in sequence)")
@click.option("--seed", type=int, default=0, show_default=True, help="crops, interleaving, losses, noise, K-means")
@click.option("--mtu", type=click.IntRange(300, 65507), default=1200, show_default=True)
@click.option("--pcap", type=click.Path(dir_okay=False), default=None,
              help="write what the sender sent as pcapng (Wireshark: netsem.msg_type, netsem.kb_version, netsem.importance)")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="PSNR per message, updates marked (PNG)")
@click.option("--compare/--no-compare", default=False, show_default=True,
              help="also run the same sequence without KB updates (same seed, offline) and show both")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="every message's row as JSON")
def seb_sequence(images, updates, trigger, repeat, snapshot_every, transport, netem, phy, phy_important, uep, protect, kb_path, save_kb,
                 size, crops, seed, mtu, pcap,
                 plot_path, compare, json_path):
    """Send a sequence of images with the seb codec (seed 001) from a sender to a receiver,
    with or without KB updates, and print each message's quality, KB version and bytes.

    IMAGES: files, one message each, in order; none: the built-in changing-content sequence
    (three groups of photographs never trained on: scikit-image's evaluation photographs, the
    shared plasma-* photographs, then motorcycle / clock / colour wheel / cell)."""
    from emulator.grammar import NetemSpecError
    from netsem.codecs.base import CodecError
    from netsem.codecs.registry import get_codec
    from netsem.phy.spec import PhySpecError
    from netsem.seb.network import run_sequence
    from netsem.seb.session import SequenceOptions

    try:
        from netsem.seb.kb_update import UpdatePolicy

        options = SequenceOptions(netem=netem, phy=phy, phy_important=phy_important, protect=protect, updates=updates,
                                  repeat=repeat, snapshot_every=snapshot_every, mtu=mtu, seed=seed,
                                  policy=UpdatePolicy(trigger=trigger))
        from netsem.seb.session import build_link

        build_link(options)  # a bad netem / PHY spec fails here, before any work
        codec = get_codec("seb", uep=uep, seed=seed) if kb_path is None else get_codec("seb", uep=uep, seed=seed, kb=kb_path)
    except (ValueError, NetemSpecError, PhySpecError, CodecError) as error:
        raise click.UsageError(str(error).splitlines()[0]) from None
    named, groups = _named_images(images, size, crops, seed)
    with click.progressbar(length=len(named) * (2 if compare else 1), label="messages", file=sys.stderr) as bar:
        result = run_sequence(named, options, transport, codec=codec, progress=lambda: bar.update(1))
        baseline = None
        if compare:
            import dataclasses

            baseline = run_sequence(named, dataclasses.replace(options, updates=not updates), "offline", codec=codec,
                                    progress=lambda: bar.update(1))
    if pcap:
        _write_capture(pcap, result.sent_datagrams)
    if save_kb:
        result.receiver_kb.save(save_kb)
        click.echo(f"KB version {result.receiver_kb.version} written to {save_kb}", err=True)
    click.echo(f"{'#':>3} {'grp':>3} {'image':<24} {'KB':>3} {'PSNR':>6} {'SSIM':>6} {'data B':>6} {'upd B':>6} "
               f"{'dup B':>5} {'eq.5':>6}  update made")
    for row, group in zip(result.rows, groups):
        psnr = "-" if row.psnr is None else f"{row.psnr:.2f}"
        ssim = "-" if row.ssim is None else f"{row.ssim:.3f}"
        dist = "" if row.distortion is None else f"{row.distortion:.3f}"
        click.echo(f"{row.index:>3} {group + 1:>3} {row.name[:24]:<24} {row.kb_version:>3} {psnr:>6} {ssim:>6} "
                   f"{row.data_bytes:>6} {row.update_bytes:>6} {row.protection_bytes:>5} {dist:>6}  {row.update}"
                   + (f"  [{row.error}]" if row.error else ""))
    for g in sorted(set(groups)):
        line = f"group {g + 1}: mean PSNR"
        for label, run in (("with" if updates else "without", result), ("without" if updates else "with", baseline)):
            if run is None:
                continue
            values = [r.psnr for r, gg in zip(run.rows, groups) if gg == g and r.psnr is not None]
            line += (f"  {label} updates {np.mean(values):.2f} dB ({len(values)} decoded)" if values
                     else f"  {label} updates: nothing decoded")
        click.echo(line)
    data = sum(r.data_bytes for r in result.rows)
    upd = sum(r.update_bytes for r in result.rows)
    click.echo(f"bytes: data {data}, KB updates {upd} ({100 * upd / max(1, data):.1f} % of data), "
               f"duplicates {sum(r.protection_bytes for r in result.rows)}; KB versions applied {result.applied}")
    click.echo("receiver: " + ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items())))
    if result.phy_stats:
        click.echo("phy: " + ", ".join(f"{k}={v}" for k, v in sorted(result.phy_stats.items())))
    if json_path:
        Path(json_path).write_text(json.dumps({"rows": [vars(r) for r in result.rows], "groups": groups,
                                               "counts": result.counts, "applied": result.applied,
                                               "baseline_rows": [vars(r) for r in baseline.rows] if baseline else None},
                                              indent=1, default=float))
    if plot_path:
        _plot_sequence(result, baseline, groups, plot_path, updates)


def _write_capture(path: str, sent: list[list[bytes]]) -> None:
    import time

    from emulator.pcapng import PcapngWriter

    start, n = time.time_ns(), 0
    with PcapngWriter(path, interfaces=("sender",)) as capture:
        for datagrams in sent:
            for datagram in datagrams:
                capture.write(datagram, start + 1000 * n, ("127.0.0.1", 40000), ("127.0.0.1", 47474))
                n += 1
    click.echo(f"capture: {path} ({n} datagrams as sent)", err=True)


def _plot_sequence(result, baseline, groups: list[int], path: str, updates: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = [r.index for r in result.rows]
    for run, with_updates in ((result, updates), (baseline, not updates)):
        if run is not None:
            ax.plot(x, [np.nan if r.psnr is None else r.psnr for r in run.rows], "-o" if with_updates else "--s", ms=3,
                    label="with KB updates" if with_updates else "without KB updates (KB version 1 throughout)")
    for r in (result if updates else baseline or result).rows:
        if r.update:
            ax.axvline(r.index + 0.5, color="tab:red", alpha=0.3)  # the update rides ahead of the next message
    for g in range(1, max(groups) + 1):
        ax.axvline(groups.index(g) - 0.5, color="black", ls="--", alpha=0.6)
    ax.set_xlabel("message (dashed: a new group of photographs; red: a KB update made)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@click.command("seb-eval")
@click.option("--axis", type=click.Choice(["snr", "loss", "both"]), default="both", show_default=True)
@click.option("--channels", default="awgn,rayleigh", show_default=True, help="PHY channels for the SNR axis")
@click.option("--snrs-awgn", default="0,1,1.5,2,2.5,3,3.5,4,5", show_default=True,
              help="dB (SISO, per receive antenna), comma-separated: LDPC 1/2 + QPSK decodes from about 1.5 dB, 2/3 from 3.5")
@click.option("--snrs-rayleigh", default="0,4,8,12,16,20,24", show_default=True,
              help="dB, comma-separated (block fading: one draw per datagram, CSI known at the receiver)")
@click.option("--losses", default="0,5,10,20,30,40", show_default=True, help="datagram loss %, comma-separated")
@click.option("--seeds", default="0,1", show_default=True)
@click.option("--size", type=click.IntRange(64, 1024), default=256, show_default=True)
@click.option("--crops", type=click.IntRange(1, 10), default=2, show_default=True,
              help="crops per evaluation photograph (astronaut, coffee, chelsea, rocket; never trained on)")
@click.option("--mtu", type=click.IntRange(300, 65507), default=600, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="seb-eval", show_default=True,
              help="folder for points.csv, summary.csv and seb_eval.png")
def seb_eval(axis, channels, snrs_awgn, snrs_rayleigh, losses, seeds, size, crops, mtu, out):
    """Seed 001's Fig. 8 structure: PSNR / SSIM / MS-SSIM of seb with UEP, random UEP and no UEP
    against JPEG, JPEG 2000 and cnn-sem, vs SNR (digital PHY, equal channel uses) and vs
    datagram loss (duplication as packet-level UEP). LPIPS is not offered: its network weights
    cannot be had offline."""
    import csv
    import dataclasses

    from netsem.seb.evaluate import Schemes, loss_points, plot, snr_points, summarize

    snr_lists = {"awgn": _floats(snrs_awgn, "--snrs-awgn"), "rayleigh": _floats(snrs_rayleigh, "--snrs-rayleigh")}
    loss_list = _floats(losses, "--losses")
    seed_list = [int(s) for s in _floats(seeds, "--seeds")]
    chans = [c.strip() for c in channels.split(",") if c.strip()]
    if any(c not in ("awgn", "rayleigh") for c in chans):
        raise click.BadParameter("--channels: awgn and/or rayleigh")
    if any(not 0 <= p <= 100 for p in loss_list):
        raise click.BadParameter("--losses: percentages in 0..100")
    images = sequence_groups(size=size, crops=crops, seed=1)[0]
    schemes = Schemes()
    points = []
    steps = len(images) * len(seed_list) * (sum(len(snr_lists[c]) for c in chans) if axis in ("snr", "both") else 0) \
        + len(images) * len(seed_list) * (len(loss_list) if axis in ("loss", "both") else 0)
    with click.progressbar(length=steps, label="points", file=sys.stderr) as bar:
        if axis in ("snr", "both"):
            for channel in chans:
                points += snr_points(schemes, images, channel, snr_lists[channel], seed_list, mtu,
                                     progress=lambda: bar.update(1))
        if axis in ("loss", "both"):
            points += loss_points(schemes, images, loss_list, seed_list, mtu, progress=lambda: bar.update(1))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rows = summarize(points)
    for name, table in (("points.csv", [dataclasses.asdict(p) for p in points]), ("summary.csv", rows)):
        with open(folder / name, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    plot(rows, folder / "seb_eval.png")
    click.echo(f"{'axis':<5} {'channel':<8} {'x':>5} {'scheme':<15} {'PSNR':>6} {'SSIM':>6} {'MS-SSIM':>7} {'PSNR-imp':>8} "
               f"{'bytes':>7} {'uses':>7} {'deliv':>5}")
    for r in rows:
        click.echo(f"{r['axis']:<5} {r['channel']:<8} {r['x']:>5g} {r['scheme']:<15} {r['psnr']:>6.2f} {r['ssim']:>6.3f} "
                   f"{r['ms_ssim']:>7.3f} {r['psnr_important']:>8.2f} {r['bytes']:>7.0f} {r['channel_uses']:>7.0f} "
                   f"{r['delivered']:>5.2f}")
    click.echo(f"wrote {folder / 'summary.csv'}, {folder / 'points.csv'}, {folder / 'seb_eval.png'}", err=True)
