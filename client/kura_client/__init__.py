"""Kura's command-line uploader (``kura-upload``). Needs only ``requests``, not Django."""

__version__ = "0.1.0"
