"""Weight files of seed-000 models (safetensors only, never pickle).

Shipped weights: fp16 tensors (`netsem.codecs.weights.save_state`) with the config in the
metadata, so `load_model(path)` builds the very network that was trained. Checkpoints for
resuming: fp32 weights, Adam's moments and step counters as tensors, and the training state
(step, seconds trained, history, config, options) as JSON metadata.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from netsem.codecs.config import WEIGHTS_DIR
from netsem.codecs.weights import load_state, restore_checkpoint_state, save_checkpoint_state, save_state
from netsem.multiuser.config import GssmaConfig
from netsem.multiuser.model import Gssma

KIND = "gssma"
# The shipped models by the name the commands take, and what each one is.
SHIPPED = {
    "c0.2": "proposed, balanced clustering, common ratio 0.2 (Proposed-C (0.2))",
    "c0.1": "proposed, balanced clustering, common ratio 0.1 (Proposed-C (0.1))",
    "u0.2": "proposed without clustering (batch-order groups), common ratio 0.2 (Proposed (0.2))",
    "private": "private-only: no common features, all 1024 symbols private",
}


def shipped_path(name: str) -> Path:
    return WEIGHTS_DIR / f"gssma-{name}.safetensors"


def resolve(name_or_path: str) -> Path:
    """A shipped model's name (`c0.2`) or a file path."""
    return shipped_path(name_or_path) if name_or_path in SHIPPED else Path(name_or_path)


def save_model(path: Path, model: Gssma, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_state(path, model.state_dict(), {"kind": KIND, "config": model.config.to_json(), **metadata})


def load_model(name_or_path: str | Path) -> tuple[Gssma, dict[str, str]]:
    path = resolve(str(name_or_path))
    if not path.is_file():
        raise ValueError(f"no weight file {path}; shipped models: {', '.join(SHIPPED)}")
    state, meta = load_state(path)
    if meta.get("kind") != KIND:
        raise ValueError(f"{path} is not a {KIND} weight file (kind {meta.get('kind')!r})")
    model = Gssma(GssmaConfig.from_json(meta["config"]))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval()
    return model, meta


def save_checkpoint(path: Path, model: Gssma, optimizer: torch.optim.Optimizer, step: int, seconds: float,
                    history: list, config: GssmaConfig, options) -> None:
    save_checkpoint_state(path, model, optimizer, {
        "kind": KIND + "-checkpoint", "config": config.to_json(), "step": str(step), "seconds": repr(seconds),
        "history": json.dumps(history), "options": json.dumps(dataclasses.asdict(options))})


def load_checkpoint(path: Path, model: Gssma, optimizer: torch.optim.Optimizer) -> tuple[int, float, list]:
    """Restores weights and Adam's state in place; returns (step, seconds trained, history)."""
    state, meta = load_state(path)  # as stored: fp32
    if GssmaConfig.from_json(meta["config"]) != model.config:
        raise ValueError(f"{path} was trained with another config: {meta['config']}")
    restore_checkpoint_state(state, model, optimizer)
    return int(meta["step"]), float(meta["seconds"]), json.loads(meta["history"])
