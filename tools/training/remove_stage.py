"""Start an 8x-down cnn codec from a trained 16x-down one: drop one stride-2 stage from each side.

The high-rate points of issue 16 need more latent positions than the 16x-down codecs have
(their 60 channels cap the reconstruction near 28 dB whatever the rate). Training an 8x-down
network from scratch takes hours on CPU; starting from a trained one's layers converges much
sooner. The encoder keeps its first two stages and its last convolution (the one the head
reads), the decoder its first stage (the one reading the latent) and its last two (the ones
writing pixels); the dropped middle stages are what fine-tuning has to make up for.

    python tools/training/remove_stage.py netsem/weights/cnn-sem-impute-q3.safetensors \
        runs/hr/init.safetensors --set quant_step=1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from netsem.codecs.models import NetConfig, build_net, count_parameters, override_config
from netsem.codecs.weights import load_state, save_state

# 16x-down Sequential index -> 8x-down index (conv, GDN, conv, GDN, conv, GDN, conv)
ENCODER_KEPT = {0: 0, 1: 1, 2: 2, 3: 3, 6: 4}
DECODER_KEPT = {0: 0, 1: 1, 4: 2, 5: 3, 6: 4}


def removed_stage(state: dict, renames: dict[str, dict[int, int]]) -> dict:
    """``state`` with the encoder / decoder layers renumbered by ``renames`` (others dropped)."""
    out = {}
    for key, value in state.items():
        part, _, rest = key.partition(".")
        if part in renames:
            index, _, field = rest.partition(".")
            if int(index) not in renames[part]:
                continue
            key = f"{part}.{renames[part][int(index)]}.{field}"
        out[key] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="a 16x-down cnn weight file")
    ap.add_argument("dst", type=Path)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a field of the new config (e.g. quant_step=1)")
    a = ap.parse_args()

    state, meta = load_state(a.src)
    src = NetConfig.from_json(meta["config"])
    if src.arch != "cnn" or src.down != 16:
        raise SystemExit(f"{a.src} is not a 16x-down cnn codec")
    dst = override_config(dataclasses.replace(src, down=8), a.overrides)
    net = build_net(dst)
    net.load_state_dict({k: v.float() for k, v in
                         removed_stage(state, {"encoder": ENCODER_KEPT, "decoder": DECODER_KEPT}).items()}, strict=True)
    hist = json.loads(meta.get("history", "[]"))
    hist.append({"stage removed": {"from": str(a.src), "down": [16, 8], "config": dst.to_json()}})
    out_meta = dict(meta)
    out_meta.update(config=dst.to_json(), history=json.dumps(hist), parameters=str(count_parameters(net)))
    a.dst.parent.mkdir(parents=True, exist_ok=True)
    save_state(a.dst, {k: v.detach() for k, v in net.state_dict().items()}, out_meta)
    print(f"{a.src} -> {a.dst}: {dst.to_json()}")


if __name__ == "__main__":
    main()
