"""Seed 004's weight files (safetensors, fp16, config and training record in the metadata).

Shipped models by name (`netsem/weights/semnoma-NAME.safetensors`), see SHIPPED.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from netsem.codecs.config import WEIGHTS_DIR
from netsem.codecs.weights import load_state, restore_checkpoint_state, save_checkpoint_state, save_state
from netsem.semnoma.config import SemNomaConfig
from netsem.semnoma.model import SemNomaJscc
from netsem.semnoma.refine import Refiner

SHIPPED = {
    "teacher": "OMA teacher: interference-free orthogonal transmission, SNR 0-20 dB",
    "plain": "NOMA student without distillation (from the teacher's weights), SNR 0-20 dB",
    "student": "NOMA student with feature-affinity + cross-head distillation, SNR 0-20 dB",
    "snr5": "NOMA student without distillation, trained at SNR 5 dB only",
    "snr15": "NOMA student without distillation, trained at SNR 15 dB only",
    "refiner": "conditional residual denoiser on the distilled student's output",
}


def resolve(name_or_path: str | Path) -> Path:
    name = str(name_or_path)
    return WEIGHTS_DIR / f"semnoma-{name}.safetensors" if name in SHIPPED else Path(name)


def build(meta: dict[str, str]) -> torch.nn.Module:
    if meta.get("kind") == "refiner":
        return Refiner()
    return SemNomaJscc(SemNomaConfig.from_json(meta["config"]))


def metadata_of(model: torch.nn.Module) -> dict[str, str]:
    if isinstance(model, Refiner):
        return {"kind": "refiner"}
    return {"kind": "jscc", "config": model.config.to_json()}


def save_model(path: Path, model: torch.nn.Module, extra: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_state(path, model.state_dict(), {**metadata_of(model), **extra})


def load_model(name_or_path: str | Path) -> tuple[torch.nn.Module, dict[str, str]]:
    path = resolve(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"no seed-004 model {name_or_path!r} (shipped: {', '.join(SHIPPED)}; or a file)")
    state, meta = load_state(path)
    model = build(meta)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval(), meta


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, record: dict) -> None:
    save_checkpoint_state(path, model, optimizer, {**metadata_of(model), "record": json.dumps(record)})


def load_checkpoint(path: Path, optimizer_for) -> tuple[torch.nn.Module, torch.optim.Optimizer, dict]:
    state, meta = load_state(path)
    model = build(meta)
    optimizer = optimizer_for(model)
    restore_checkpoint_state(state, model, optimizer)
    return model, optimizer, json.loads(meta["record"])
