"""streamcolor: colorize black-and-white video and photos, fast enough to watch live."""

__version__ = "0.1.0"
