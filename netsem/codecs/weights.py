"""Weight files: safetensors only (never pickle), fp16 storage, metadata carries the config.

Importing this module does not import torch: `load_arrays` reads a file as numpy (the numpy
engine's path); the torch readers and writers import it when called."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import WEIGHTS_DIR  # noqa: F401  (where the shipped files are; re-exported for tools)

if TYPE_CHECKING:
    import torch


def load_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A weight file's tensors as numpy arrays (as stored) and its metadata."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def save_state(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if v.is_floating_point():
            v = v.to(torch.float16)
        tensors[k] = v.contiguous()
    tmp = Path(str(path) + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)


def load_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        for k in f.keys():
            tensors[k] = f.get_tensor(k)
    return tensors, meta


def save_checkpoint_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                          metadata: dict[str, str]) -> None:
    """A resumable training checkpoint: fp32 weights (`model.*`) and Adam's moments and step
    counters (`adam.PARAMETER.FIELD`), written atomically; `metadata` says what else resumes."""
    import torch
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                tensors[f"adam.{names[id(p)]}.{key}"] = torch.as_tensor(value).detach().contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)


def restore_checkpoint_state(state: dict[str, torch.Tensor], model: torch.nn.Module,
                             optimizer: torch.optim.Optimizer) -> None:
    """Puts a checkpoint's weights and Adam's state (from `load_state`) back in place."""
    model.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
    params = dict(model.named_parameters())
    for key, value in state.items():
        if key.startswith("adam."):
            name, field = key[len("adam."):].rsplit(".", 1)
            optimizer.state[params[name]][field] = value
