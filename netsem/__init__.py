"""netsem: learned image codecs over real UDP, through a netem-compatible emulator.

    import netsem
    report = netsem.simulate("photo.png", codec="cnn-sem", netem="loss random 10%")

The names below are imported on first use, so `import netsem` itself stays light (no torch);
see `netsem.api` for the chain, `netsem.codecs` for codecs and their registry.
"""

__version__ = "0.1.0"

_LAZY = {
    "Chain": "netsem.api", "simulate": "netsem.api", "send": "netsem.api",
    "Report": "netsem.pipeline.report", "SessionResult": "netsem.pipeline.session",
    "LoadedImage": "netsem.pipeline.images",
    "Codec": "netsem.codecs.base", "CodecError": "netsem.codecs.base",
    "get_codec": "netsem.codecs.registry", "register_codec": "netsem.codecs.registry",
    "codec_names": "netsem.codecs.registry",
    "TorchCodec": "netsem.codecs.torch_codec",
    "LatentFrame": "packetizers.frames", "StreamFrame": "packetizers.frames",
    "Stage": "emulator.stages", "StageOutcome": "emulator.stages", "register_stage": "emulator.stages",
    "LossModel": "emulator.loss", "register_loss_model": "emulator.loss",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'netsem' has no attribute {name!r}")
