"""Tidings: an instant-messaging backend built as a fleet of microservices."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tidings")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
