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
from netsem.codecs.weights import load_state, save_state
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
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                tensors[f"adam.{names[id(p)]}.{key}"] = torch.as_tensor(value).detach().contiguous()
    meta = {"kind": KIND + "-checkpoint", "config": config.to_json(), "step": str(step), "seconds": repr(seconds),
            "history": json.dumps(history), "options": json.dumps(dataclasses.asdict(options))}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_checkpoint(path: Path, model: Gssma, optimizer: torch.optim.Optimizer) -> tuple[int, float, list]:
    """Restores weights and Adam's state in place; returns (step, seconds trained, history)."""
    state, meta = load_state(path)  # as stored: fp32
    if GssmaConfig.from_json(meta["config"]) != model.config:
        raise ValueError(f"{path} was trained with another config: {meta['config']}")
    model.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
    params = dict(model.named_parameters())
    for key, value in state.items():
        if key.startswith("adam."):
            name, field = key[len("adam."):].rsplit(".", 1)
            optimizer.state[params[name]][field] = value
    return int(meta["step"]), float(meta["seconds"]), json.loads(meta["history"])
