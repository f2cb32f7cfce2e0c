"""netsem: learned image codecs over real UDP, through a netem-compatible emulator."""

__version__ = "0.1.0"
