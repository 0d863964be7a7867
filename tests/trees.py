"""Random file trees for property tests: regular and executable files, symlinks, directories."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import strategies as st

names = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="/\\"),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", ".."))

leaves = st.one_of(
    st.tuples(st.just("file"), st.binary(max_size=300), st.booleans()),
    st.tuples(st.just("symlink"), st.text(min_size=1, max_size=40).filter(lambda t: "\0" not in t)),
)

trees = st.recursive(
    leaves,
    lambda children: st.tuples(st.just("dir"), st.dictionaries(names, children, max_size=5)),
    max_leaves=20,
)


def materialise(node, path: Path) -> None:
    """Create `node` (from `trees`) at `path`."""
    kind = node[0]
    if kind == "file":
        path.write_bytes(node[1])
        os.chmod(path, 0o755 if node[2] else 0o644)
    elif kind == "symlink":
        os.symlink(node[1], path)
    else:
        path.mkdir()
        for name, child in node[1].items():
            materialise(child, path / name)
