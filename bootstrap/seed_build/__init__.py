"""Package data and helpers for building the stage-0 seed (see bootstrap.seed)."""
