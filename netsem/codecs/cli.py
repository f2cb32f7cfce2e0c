"""`netsem train`, `netsem evaluate` (click commands, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("name")
@click.option("--photos", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of training photographs (JPEG/PNG), added to scikit-image's bundled ones "
                   "(default: those alone).")
@click.option("--no-skimage", is_flag=True, help="Do not add scikit-image's bundled photos.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/train"),
              show_default=True, help="Where NAME.safetensors and NAME.log are written.")
@click.option("--steps", type=int, default=10000, show_default=True)
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--crop", type=int, default=256, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--schedule", type=click.Choice(["cosine", "constant"]), default="cosine",
              show_default=True)
@click.option("--warmup", type=int, default=300, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--drop", type=click.Choice(["registry", "none", "channel", "mixed"]),
              default="registry", show_default=True,
              help="Unit drops in training (default: the codec's registered recipe).")
@click.option("--drop-apply", type=float, default=0.5, show_default=True,
              help="Share of training samples that get unit drops.")
@click.option("--drop-max", type=float, default=0.5, show_default=True,
              help="Their drop rate is drawn from U(0, drop-max).")
@click.option("--amp", is_flag=True, help="bf16 autocast (GPU); GDN stays in fp32.")
@click.option("--channels-last", is_flag=True, help="NHWC memory format (faster on GPUs).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a field of the codec's registered network config (repeatable), "
                   "e.g. --set impute=true --set broadcast_k=5: for experiments.")
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--max-seconds", type=float, default=None, help="Stop early (checkpoint kept).")
@click.option("--stop-after", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N of the --steps (checkpoint kept; the learning-rate schedule still spans "
                   "--steps): replays a run that was cut short.")
@click.option("--log-every", type=int, default=100, show_default=True, help="Log every N steps.")
@click.option("--lmbda", type=float, default=None,
              help="Rate-distortion training: loss = LMBDA x 255^2 x MSE + bits per pixel (a learned "
                   "per-channel rate proxy); larger LMBDA, higher rate. Default: distortion alone.")
@click.option("--quant", type=click.Choice(["noise", "mixed"]), default="noise", show_default=True,
              help="What the decoder trains on: the latent plus uniform noise of one quantizer step, or "
                   "(mixed) the rounded values the receiver gets, with a straight-through gradient; the "
                   "rate proxy sees the noise either way.")
@click.option("--rate-lr-scale", type=float, default=50.0, show_default=True,
              help="The rate proxy's learning rate in multiples of --lr (the rate points q0-q4 trained "
                   "with 1, which left the proxy's scales near their start).")
@click.option("--init", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Continue from this weight file (step count continues).")
def train(name, photos, no_skimage, out, steps, batch, crop, lr, schedule, warmup, seed, drop,
          drop_apply, drop_max, amp, channels_last, overrides, device, threads, max_seconds,
          stop_after, log_every, lmbda, quant, rate_lr_scale, init) -> None:
    """Train codec NAME on the photographs; writes OUT/NAME.safetensors (copy it to
    netsem/weights/ to ship it)."""
    import torch

    from .data import load_training_images
    from .models import override_config
    from .registry import LEARNED
    from .train import TrainOptions
    from .train import train as run_training

    if name not in LEARNED:
        raise click.UsageError(f"{name!r} is not a trainable codec: {', '.join(LEARNED)}")
    if threads:
        torch.set_num_threads(threads)
    spec = LEARNED[name]
    try:
        config = override_config(spec.config, overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    opts = TrainOptions(steps=steps, batch=batch, crop=crop, lr=lr, schedule=schedule,
                        warmup=warmup, seed=seed, drop=spec.drop if drop == "registry" else drop,
                        drop_apply=drop_apply, drop_max=drop_max, amp=amp,
                        channels_last=channels_last, max_seconds=max_seconds, stop_after=stop_after,
                        log_every=log_every, lmbda=lmbda, quant=quant,
                        rate_lr_scale=rate_lr_scale)
    images = load_training_images(photos, skimage_extras=not no_skimage)
    click.echo(f"{len(images)} training images (with scales), drop={opts.drop}")
    run_training(name, config, images, out, opts, device=device, init=init)


from .evaluate import evaluate  # noqa: E402,F401
