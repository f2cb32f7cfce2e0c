"""The `netsem` command.

Subcommands live in their own modules and are imported only when invoked, so that
`netsem emulate` (no torch) starts fast and `--help` never loads a neural codec.
"""

from __future__ import annotations

import importlib
import sys

import click

from netsem import __version__

# name -> ("module:attribute" of a click.Command, one-line help for `netsem --help`)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "send": ("netsem.pipeline.cli:send", "Send an image through a codec over real UDP (with netem impairments)."),
    "simulate": ("netsem.pipeline.cli:simulate", "The same as send on a virtual clock, no sockets."),
    "recv": ("netsem.pipeline.cli:recv", "Receive netsem frames on a UDP port and decode each one."),
    "sweep": ("netsem.pipeline.cli:sweep",
              "Run a grid (codecs x partitions x netem/presets x PHY at each SNR x seeds) as Dask tasks to a resumable CSV."),
    "plot": ("netsem.pipeline.cli:plot",
             "Plot PSNR/SSIM against the swept parameter (loss, SNR) and per-image ΔPSNR from sweep results."),
    "report": ("netsem.pipeline.report_html:report",
               "An HTML page of sweep results: figure, every point, reconstructions side by side."),
    "emulate": ("emulator.cli:emulate", "A netem-compatible UDP proxy: impair traffic between two ports."),
    "presets": ("emulator.presets_cli:presets", "Named impairments from published figures, for emulate --preset."),
    "trace": ("emulator.trace_cli:trace", "Make Mahimahi link traces and packet traces from captures."),
    "inspect": ("netsem.inspect.cli:inspect",
                "Per-datagram table and per-frame losses of netsem datagrams in a pcap/pcapng capture."),
    "phy-baseline": ("netsem.experiments.phy_baseline:phy_baseline",
                     "Seed 002's standard chain: JPEG/WebP/JPEG 2000 + LDPC + QAM over 2x2 MIMO vs learned codecs."),
    "multicast": ("netsem.multiuser.cli:multicast",
                  "Seed 000: G x K users' images, common features multicast per group, private features unicast."),
    "multiuser-eval": ("netsem.multiuser.cli:multiuser_eval",
                       "Seed 000's figures: PSNR / MS-SSIM vs SNR for every multi-user scheme and the classic chain."),
    "seb-sequence": ("netsem.seb.cli:seb_sequence",
                     "Seed 001: a sequence of images with the seb codec, KB updates over UDP (msg_type KB_UPDATE)."),
    "seb-eval": ("netsem.seb.cli:seb_eval",
                 "Seed 001's Fig. 8: seb with UEP / random UEP / none vs JPEG, JPEG 2000, cnn-sem, vs SNR and loss."),
    "noma-send": ("netsem.semnoma.cli:noma_send",
                  "Seed 004: one uplink user's image through the adaptive JSCC, to the air (emulate --stage noma)."),
    "noma-recv": ("netsem.semnoma.cli:noma_recv",
                  "Seed 004: the base station: superposed datagrams in, SIC, every user's image out."),
    "noma-simulate": ("netsem.semnoma.cli:noma_simulate",
                      "Seed 004: noma-send x K -> emulate --stage noma -> noma-recv on a virtual clock."),
    "noma-eval": ("netsem.semnoma.cli:noma_eval",
                  "Seed 004's figures: near/far PSNR/SSIM vs SNR: OMA teacher, NOMA, +distillation, +refinement, classic."),
    "models": ("netsem.pipeline.catalog:models", "List the registered codecs and their weights."),
    "train": ("netsem.codecs.cli:train", "Train a learned codec on photographs."),
    "evaluate": ("netsem.codecs.cli:evaluate", "PSNR/SSIM of codecs under random unit loss."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module_name, attribute = SUBCOMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in SUBCOMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netsem")
def cli() -> None:
    """Send images through learned codecs over real UDP, impaired like `tc netem`."""


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
