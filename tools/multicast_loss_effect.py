"""Where one lost datagram lands in seed 000's downlink, and what it costs.

    .venv/bin/python tools/multicast_loss_effect.py [--model c0.2] [--batches 4]

For batches of 2 groups x 5 users (32x32 crops of the evaluation photographs, AWGN 15 dB), the
sender's datagrams go through the offline multicast session once whole, then once without one
common datagram of group 0, then once without one private datagram of one user of group 1.
Prints the mean PSNR change of the group-0 members, of the other users, and of the victim.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from netsem.metrics import psnr_db
from netsem.multiuser.data import crop_batch, eval_photos
from netsem.multiuser.network import UserLink, clean_path_session, decoded_image
from netsem.multiuser.weights import load_model


def psnrs(model, images, seed, **drop):
    tx, _, got = clean_path_session(model, images, 2, seed=seed, **drop)
    return tx, {u: psnr_db(images[u], decoded_image(model, received, UserLink(), seed, u))
                for u, received in got.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="c0.2")
    parser.add_argument("--batches", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)[0]
    members, others, victims, victim_others = [], [], [], []
    for seed in range(args.batches):
        images = crop_batch(eval_photos(), 10, np.random.default_rng([11, seed]), size=32)
        tx, base = psnrs(model, images, seed)
        group0 = set(tx.groups[0].tolist())
        _, lost = psnrs(model, images, seed, drop_common=0)
        members += [lost[u] - base[u] for u in group0]
        others += [lost[u] - base[u] for u in range(10) if u not in group0]
        victim = int(tx.groups[1][2])
        _, lost = psnrs(model, images, seed, drop_private=victim)
        victims.append(lost[victim] - base[victim])
        victim_others += [lost[u] - base[u] for u in range(10) if u != victim]
    print(f"model {args.model}, {args.batches} batches of 2 groups x 5 users, AWGN 15 dB")
    print(f"one common datagram of group 0 lost: members {np.mean(members):+.3f} dB "
          f"(min {np.min(members):+.3f}, max {np.max(members):+.3f}), others {np.mean(others):+.3f} dB "
          f"(max |change| {np.max(np.abs(others)):.3f})")
    print(f"one private datagram of one user lost: that user {np.mean(victims):+.3f} dB "
          f"(min {np.min(victims):+.3f}, max {np.max(victims):+.3f}), others max |change| "
          f"{np.max(np.abs(victim_others)):.3f} dB")


if __name__ == "__main__":
    main()
