"""Named impairments from published figures: `netsem emulate --preset NAME`, `netsem presets`.

A preset is netem words (netsem extensions allowed); the user's own words are appended, so a
preset is a starting point (`--preset wlan-ep6 -- delay 20ms`). Each preset carries the
figures it reproduces and where they come from; `tests/emulator/test_emulator_presets.py`
checks every preset's achieved figures against them over 10^6 packets (10^7 where 10^6 cannot
resolve 5 %).

Figures: `mean_loss` (fraction of packets lost), `mean_burst` (mean run of consecutive losses,
packets), `delay_ms` (mean one-way delay), `ipdv_ms` (ITU-T Y.1541's delay variation: the
99.9th percentile of the delay minus its minimum).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.burst import gilbert_figures, percent_word
from emulator.grammar import FourStateLoss, GilbertElliottLoss, NetemSpec, parse_netem


@dataclass(frozen=True)
class Preset:
    name: str
    words: str
    summary: str
    source: str
    figures: dict[str, float] = field(default_factory=dict)
    verified: bool = True  # False: the figures are quoted without their primary publication at hand


_ISSUE_21 = ("the WLAN error conditions EP1-EP6 of the loss-resilient video/image coding literature, as quoted in "
             "netsem issue 21 (mean loss / mean burst); the primary publication was not at hand to check")
_Y1541 = ("ITU-T Rec. Y.1541 (12/2011), Network performance objectives for IP-based services, Table 1: class {cls}: "
          "IPTD {iptd} ms (mean), IPDV {ipdv} ms (99.9th percentile minus minimum), IPLR 1e-3. The preset sits "
          "at the class's limits: uniform jitter of +/-{half} ms around the mean")
_QCI = ("3GPP TS 23.203, Table 6.1.7 (standardized QCI characteristics): QCI {qci} ({use}): packet delay budget "
        "{pdb} ms, packet error loss rate {pelr}. The preset holds every packet for the whole budget and loses "
        "packets at the rate, independently: the bearer at its limits")

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (
    Preset("wlan-ep1", "loss burst 0.21% 6.5", "WLAN condition EP1: rare, long bursts", _ISSUE_21,
           {"mean_loss": 0.0021, "mean_burst": 6.5}, verified=False),
    Preset("wlan-ep6", "loss burst 32.4% 2.71", "WLAN condition EP6: heavy loss", _ISSUE_21,
           {"mean_loss": 0.324, "mean_burst": 2.71}, verified=False),
    Preset("y1541-class0", "delay 100ms 25ms loss 0.1%", "IP QoS class 0 (real-time, jitter-sensitive, interactive)",
           _Y1541.format(cls=0, iptd=100, ipdv=50, half=25),
           {"delay_ms": 100.0, "ipdv_ms": 50.0, "mean_loss": 0.001}),
    Preset("y1541-class1", "delay 400ms 25ms loss 0.1%", "IP QoS class 1 (real-time, jitter-sensitive, interactive)",
           _Y1541.format(cls=1, iptd=400, ipdv=50, half=25),
           {"delay_ms": 400.0, "ipdv_ms": 50.0, "mean_loss": 0.001}),
    Preset("lte-qci1", "delay 100ms loss 1%", "LTE bearer QCI 1, conversational voice, at its budget",
           _QCI.format(qci=1, use="conversational voice", pdb=100, pelr="1e-2"),
           {"delay_ms": 100.0, "mean_loss": 0.01}),
    Preset("lte-qci2", "delay 150ms loss 0.1%", "LTE bearer QCI 2, conversational video, at its budget",
           _QCI.format(qci=2, use="conversational video, live streaming", pdb=150, pelr="1e-3"),
           {"delay_ms": 150.0, "mean_loss": 0.001}),
    Preset("lte-qci7", "delay 100ms loss 0.1%", "LTE bearer QCI 7, voice/video/interactive gaming, at its budget",
           _QCI.format(qci=7, use="voice, video (live streaming), interactive gaming", pdb=100, pelr="1e-3"),
           {"delay_ms": 100.0, "mean_loss": 0.001}),
    Preset("geo-satellite", "delay 238.7ms", "one hop through a geostationary satellite (propagation only)",
           "geometry: 2 x 35 786 km (GEO altitude, ground stations at the sub-satellite point) / 299 792.458 km/s "
           "= 238.7 ms one way; slant paths add up to ~40 ms, queues and processing more",
           {"delay_ms": 238.7}),
)}

# What issue 21 asked for that is not here, and why (printed by `netsem presets`).
MISSING = (
    "wlan-ep2 .. wlan-ep5: their mean loss / mean burst pairs were not at hand with a source",
    "a Gilbert-Elliott 15 % condition: its burst length (or p, r) was not at hand with a source",
    "measured LTE / Wi-Fi / satellite delay-jitter-rate profiles: no measurement study was at hand to quote",
)


class PresetError(LookupError):
    pass


def preset_words(name: str) -> list[str]:
    """The netem words of a preset; PresetError naming the known ones otherwise."""
    preset = PRESETS.get(name)
    if preset is None:
        raise PresetError(f"unknown preset {name!r} (known: {', '.join(PRESETS)}; see `netsem presets`)")
    return preset.words.split()


def netem_equivalent(spec: NetemSpec) -> str:
    """The loss of a spec in netem's own words when a netsem extension (`loss burst`) set it, else ''."""
    if spec.loss_burst is None or not isinstance(spec.loss, GilbertElliottLoss):
        return ""
    loss = spec.loss
    return (f"loss gemodel {percent_word(loss.p)} {percent_word(loss.r)} 100% 0% "
            f"= loss state {percent_word(loss.p)} {percent_word(loss.r)}")


def expected_loss_figures(spec: NetemSpec) -> tuple[float, float] | None:
    """(mean loss, mean burst) a simple-Gilbert loss clause achieves, from the u32 values netem holds."""
    loss = spec.loss
    if isinstance(loss, GilbertElliottLoss) and loss.one_minus_h == 1.0 and loss.one_minus_k == 0.0:
        return gilbert_figures(loss.p, loss.r)
    if isinstance(loss, FourStateLoss) and (loss.p32, loss.p23, loss.p14) == (0.0, 1.0, 0.0):
        return gilbert_figures(loss.p13, loss.p31)
    return None


def describe(preset: Preset) -> list[str]:
    """The lines `netsem presets` prints for one preset."""
    spec = parse_netem(preset.words)
    lines = [f"{preset.name}: {preset.summary}", f"    netem words: {preset.words}"]
    equivalent = netem_equivalent(spec)
    if equivalent:
        lines.append(f"    in netem's own words: {equivalent}")
    figures = ", ".join(f"{key} {value:g}" for key, value in preset.figures.items())
    lines.append(f"    published: {figures}")
    lines.append(f"    source{'' if preset.verified else ' (not verified)'}: {preset.source}")
    return lines
