"""bootstrap: grow a hermetic C/C++ toolchain from a hashed seed into a content-addressed store."""

__version__ = "0.1.0"
