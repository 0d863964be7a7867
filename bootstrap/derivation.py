"""Derivations: the build recipes of the store, in Nix's exact `.drv` format.

A derivation names its outputs, the derivations and sources it needs, and how to run its
builder. It is written as an ATerm, `Derive([outputs],[inputDrvs],[inputSrcs],"system",
"builder",[args],[env])`, and stored as a `text` store path `<name>.drv` that references its
input sources and input derivations.

Output paths come from the derivation itself. A fixed output's path follows from its declared
hash. Other outputs are input-addressed: their path hashes the derivation's ATerm with its own
output paths blanked and every input derivation replaced by that input's own "modulo" hash
(Nix's hashDerivationModulo). A fixed-output derivation's modulo hash covers only its output
hash and path, so changing how something is downloaded does not change anything that uses it.

All strings are `str`; bytes that are not UTF-8 travel as surrogate escapes, so any `.drv`
survives a parse and print unchanged, and keys sort by their UTF-8 bytes as Nix sorts them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePath

from bootstrap.errors import BootstrapError
from bootstrap.hashing import DIGEST_SIZES, Hash, hash_bytes
from bootstrap.limits import MAX_DRV_SIZE, format_size
from bootstrap.store import Store
from bootstrap.storepath import (
    fixed_output_path,
    output_path,
    split_store_path,
    text_path,
    validate_name,
)

DRV_EXTENSION = ".drv"
_ENCODING = ("utf-8", "surrogateescape")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_NEEDS_ESCAPE = re.compile(r'["\\\n\r\t]')
_JSON_ESCAPE = re.compile(r'["\\\x00-\x1f]')
_PLAIN_RUN = re.compile(r'[^"\\\n\r\t]*')


def _encode(text: str) -> bytes:
    return text.encode(*_ENCODING)


def _byte_order(text: str) -> bytes:
    """Sort key matching Nix's std::map<std::string>: plain byte order."""
    return _encode(text)


def _byte_sorted(items: Iterable[str]) -> list[str]:
    """`items` in byte order; ASCII text (nearly always) sorts so as it is, without encoding."""
    items = list(items)
    return sorted(items) if all(map(str.isascii, items)) else sorted(items, key=_byte_order)


def _sorted(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(_byte_sorted(set(items)))


@dataclass(frozen=True)
class Output:
    """One output. Input-addressed: only `path`. Fixed: also `hash_algo` and `hash` (hex).

    `hash_algo` is `sha256` for a flat file hash or `r:sha256` for a NAR (recursive) hash.
    A blank `path` means "not computed yet".
    """

    path: str = ""
    hash_algo: str = ""
    hash: str = ""

    @property
    def is_fixed(self) -> bool:
        return bool(self.hash)

    @property
    def recursive(self) -> bool:
        return self.hash_algo.startswith("r:")

    def fixed_hash(self) -> Hash:
        """The declared content hash of a fixed output."""
        algo = self.hash_algo.removeprefix("r:")
        size = DIGEST_SIZES.get(algo)
        if size is None or not re.fullmatch(f"[0-9a-f]{{{size * 2}}}", self.hash):
            raise BootstrapError(
                f"fixed output hash {self.hash_algo!r}:{self.hash!r} is invalid: expected "
                "hashAlgo sha1/sha256/sha512 (with r: for NAR hashes) and a lowercase hex digest"
            )
        return Hash(algo, bytes.fromhex(self.hash))


@dataclass(frozen=True)
class Derivation:
    """A derivation. `name` is not in the ATerm: it comes from the `.drv` file's name.

    Collections are normalised on construction (sorted by byte order, duplicates dropped), so
    two derivations are equal exactly when their ATerms are.
    """

    name: str
    outputs: Mapping[str, Output]
    input_drvs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    input_srcs: tuple[str, ...] = ()
    system: str = ""
    builder: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def keyed(mapping: Mapping) -> dict:
            return {key: mapping[key] for key in _byte_sorted(mapping)}

        inputs = {path: _sorted(outputs) for path, outputs in self.input_drvs.items()}
        object.__setattr__(self, "outputs", keyed(self.outputs))
        object.__setattr__(self, "input_drvs", keyed(inputs))
        object.__setattr__(self, "input_srcs", _sorted(self.input_srcs))
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "env", keyed(self.env))

    @property
    def is_fixed_output(self) -> bool:
        return any(output.is_fixed for output in self.outputs.values())

    @property
    def references(self) -> tuple[str, ...]:
        """What the `.drv` file references in the store: input sources and derivations."""
        return _sorted([*self.input_srcs, *self.input_drvs])


# -- ATerm printing ------------------------------------------------------------------------


def _string(text: str) -> str:
    if _NEEDS_ESCAPE.search(text) is None:  # nearly always: no escapes to look up
        return f'"{text}"'
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text) + '"'


def _list(items: Iterable[str]) -> str:
    return "[" + ",".join(items) + "]"


def _strings(items: Iterable[str]) -> str:
    return _list(_string(item) for item in items)


def _tuple(*parts: str) -> str:
    return "(" + ",".join(parts) + ")"


def _unparse(drv: Derivation, mask_outputs: bool, input_drvs: Mapping[str, Iterable[str]]) -> str:
    """The ATerm; masked for output hashing, with `input_drvs` standing for the real inputs."""
    outputs = _list(
        _tuple(*map(_string, (name, "" if mask_outputs else out.path, out.hash_algo, out.hash)))
        for name, out in drv.outputs.items()
    )
    inputs = _list(
        _tuple(_string(path), _strings(_sorted(names)))
        for path, names in ((p, input_drvs[p]) for p in _byte_sorted(input_drvs))
    )
    masked = drv.outputs if mask_outputs else {}
    env = _list(  # the longest list: written out, for speed (same text as _tuple of _strings)
        f"({_string(key)},{_string('' if key in masked else value)})"
        for key, value in drv.env.items()
    )
    fields = [
        outputs,
        inputs,
        _strings(drv.input_srcs),
        _string(drv.system),
        _string(drv.builder),
        _strings(drv.args),
        env,
    ]
    return "Derive(" + ",".join(fields) + ")"


def to_aterm(drv: Derivation) -> bytes:
    """The exact bytes of the `.drv` file (no trailing newline)."""
    return _encode(_unparse(drv, False, drv.input_drvs))


# -- ATerm parsing -------------------------------------------------------------------------


class _Parser:
    """A recursive-descent reader; every error names the origin, the offset and what was due."""

    def __init__(self, text: str, origin: str) -> None:
        self.text = text
        self.origin = origin
        self.pos = 0

    def fail(self, expected: str, at: int | None = None) -> BootstrapError:
        at = self.pos if at is None else at
        found = repr(self.text[at : at + 12]) if at < len(self.text) else "end of input"
        return BootstrapError(f"{self.origin}: offset {at}: expected {expected}, found {found}")

    def expect(self, literal: str) -> None:
        if not self.text.startswith(literal, self.pos):
            raise self.fail(repr(literal))
        self.pos += len(literal)

    def accept(self, literal: str) -> bool:
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def string(self) -> str:
        self.expect('"')
        parts = []
        while True:
            run = _PLAIN_RUN.match(self.text, self.pos)
            parts.append(run.group())
            self.pos = run.end()
            if self.accept('"'):
                return "".join(parts)
            if self.pos < len(self.text) and self.text[self.pos] in "\n\r\t":
                raise self.fail("an escape \\n \\r or \\t instead of a raw control character")
            if not self.accept("\\"):
                raise self.fail("closing '\"'")
            char = self.text[self.pos : self.pos + 1]
            if char not in _UNESCAPES:
                raise self.fail('an escape \\" \\\\ \\n \\r or \\t')
            parts.append(_UNESCAPES[char])
            self.pos += 1

    def items(self, read_item: Callable[[], object]) -> list:
        self.expect("[")
        items = []
        if self.accept("]"):
            return items
        while True:
            items.append(read_item())
            if self.accept("]"):
                return items
            self.expect(",")

    def strings(self) -> list[str]:
        return self.items(self.string)

    def sorted_strings(self, what: str) -> tuple[str, ...]:
        start = self.pos
        items = self.strings()
        self.check_order(items, what, start)
        return tuple(items)

    def keyed(self, read_value: Callable[[], object], what: str) -> dict:
        """A list of `("key",value...)` tuples with strictly increasing keys, as a dict."""
        start = self.pos

        def entry() -> tuple[str, object]:
            self.expect("(")
            key = self.string()
            self.expect(",")
            value = read_value()
            self.expect(")")
            return key, value

        pairs = self.items(entry)
        self.check_order([key for key, _ in pairs], what, start)
        return dict(pairs)

    def check_order(self, keys: list[str], what: str, start: int) -> None:
        ordered = [_byte_order(key) for key in keys]
        if any(a >= b for a, b in itertools.pairwise(ordered)):
            raise self.fail(f"{what} sorted by byte order without duplicates", start)

    def output(self) -> Output:
        path = self.string()
        self.expect(",")
        hash_algo = self.string()
        self.expect(",")
        return Output(path, hash_algo, self.string())

    def derivation(self, name: str) -> Derivation:
        self.expect("Derive(")
        outputs = self.keyed(self.output, "outputs")
        self.expect(",")
        input_drvs = self.keyed(lambda: self.sorted_strings("output names"), "input derivations")
        self.expect(",")
        input_srcs = self.sorted_strings("input sources")
        self.expect(",")
        system = self.string()
        self.expect(",")
        builder = self.string()
        self.expect(",")
        args = self.strings()
        self.expect(",")
        env = self.keyed(self.string, "environment variables")
        self.expect(")")
        if self.pos != len(self.text):
            raise self.fail("end of input after the closing ')'")
        return Derivation(name, outputs, input_drvs, input_srcs, system, builder, args, env)


def parse_aterm(data: bytes, name: str, origin: str = "derivation") -> Derivation:
    """Parse `.drv` bytes. Only the canonical form `to_aterm` writes is accepted."""
    return _Parser(data.decode(*_ENCODING), origin).derivation(name)


def name_from_drv_file(path: str | PurePath) -> str:
    """The derivation name a `.drv` file stands for: `[<hash>-]<name>.drv` -> `<name>`."""
    base = PurePath(path).name
    if not base.endswith(DRV_EXTENSION) or base == DRV_EXTENSION:
        raise BootstrapError(f"{path}: expected a file named <name>.drv")
    stem = base[: -len(DRV_EXTENSION)]
    hash_part, sep, rest = stem.partition("-")
    if sep and rest and re.fullmatch(r"[0-9a-df-np-sv-z]{32}", hash_part):
        return rest
    return stem


def read_drv_file(path: str | PurePath, max_size: int | None = None) -> Derivation:
    """Read and parse a `.drv` file; its name comes from the file name. A file larger than
    `max_size` bytes (None: `BOOTSTRAP_MAX_DRV_SIZE`, 16 MiB) is refused unread."""
    name = name_from_drv_file(path)
    limit = MAX_DRV_SIZE.get() if max_size is None else max_size
    try:
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)
    except OSError as err:
        raise BootstrapError(f"{path}: cannot read derivation: {err.strerror}") from None
    if len(data) > limit:
        raise BootstrapError(
            f"{path}: derivation is larger than {format_size(limit)} (BOOTSTRAP_MAX_DRV_SIZE)"
        )
    return parse_aterm(data, name, str(path))


# -- store paths ---------------------------------------------------------------------------


def check_store_paths(drv: Derivation, store_dir: str, origin: str = "derivation") -> None:
    """Every path the derivation names must be a store path under `store_dir`."""
    named = [
        *((f"output {name!r}", out.path) for name, out in drv.outputs.items() if out.path),
        *(("input derivation", path) for path in drv.input_drvs),
        *(("input source", path) for path in drv.input_srcs),
    ]
    for what, path in named:
        try:
            split_store_path(path, store_dir)
        except BootstrapError as err:
            hint = " (pass --store-dir to match the derivation)" if path.startswith("/") else ""
            raise BootstrapError(f"{origin}: {what}: {err}{hint}") from None
    for path in drv.input_drvs:
        if not path.endswith(DRV_EXTENSION):
            raise BootstrapError(f"{origin}: input derivation {path!r} must end in .drv")


def drv_path(drv: Derivation, store_dir: str) -> str:
    """The derivation's own store path: a `text` path named `<name>.drv`."""
    check_store_paths(drv, store_dir, f"derivation {drv.name!r}")
    return text_path(to_aterm(drv), drv.name + DRV_EXTENSION, store_dir, drv.references)


# -- JSON ----------------------------------------------------------------------------------


def to_json(drv: Derivation) -> dict:
    """The object `nix show-derivation` prints for one derivation (keys in Nix's order)."""
    outputs = {}
    for name, out in drv.outputs.items():
        shown = {"path": out.path, "hashAlgo": out.hash_algo, "hash": out.hash}
        outputs[name] = {key: value for key, value in shown.items() if value}
    return {
        "outputs": outputs,
        "inputSrcs": list(drv.input_srcs),
        "inputDrvs": {path: list(names) for path, names in drv.input_drvs.items()},
        "system": drv.system,
        "builder": drv.builder,
        "args": list(drv.args),
        "env": dict(drv.env),
    }


def _json_string(text: str) -> str:
    """A JSON string escaped as Nix does: `"` `\\` \\n \\r \\t, other controls as \\u00XX."""
    return '"' + _JSON_ESCAPE.sub(lambda m: _json_escape(m.group()), text) + '"'


def _json_escape(char: str) -> str:
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def _json_text(value: object, indent: str = "") -> str:
    """Pretty JSON with two-space indents, as `nix show-derivation` prints it."""
    if isinstance(value, str):
        return _json_string(value)
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{_json_string(k)}: {_json_text(v, inner)}" for k, v in value.items()]
        brackets = "{}"
    else:
        items = [inner + _json_text(item, inner) for item in value]
        brackets = "[]"
    if not items:
        return brackets
    return brackets[0] + "\n" + ",\n".join(items) + "\n" + indent + brackets[1]


def show_json(drvs: Mapping[str, Derivation]) -> bytes:
    """The exact output of `nix show-derivation` for drv path -> derivation (sorted by path)."""
    shown = {path: to_json(drvs[path]) for path in sorted(drvs, key=_byte_order)}
    return _encode(_json_text(shown) + "\n")


# -- output paths --------------------------------------------------------------------------

Resolver = Callable[[str], Derivation]


class DerivationHasher:
    """Computes modulo hashes and output paths; input derivations come from `resolve`.

    Modulo hashes of input derivations are memoised by drv path, so a deep graph is hashed
    once per derivation however often it is shared.
    """

    def __init__(self, resolve: Resolver, store_dir: str) -> None:
        self.resolve = resolve
        self.store_dir = store_dir
        self._memo: dict[str, Hash] = {}

    def input_modulo(self, path: str) -> Hash:
        """The modulo hash of the input derivation at `path` (its outputs as recorded).

        Its inputs are hashed first, from an explicit stack rather than by recursion, so a
        chain of derivations of any length is fine; a cycle is an error.
        """
        stack = [path]
        resolved: dict[str, Derivation] = {}
        while stack:
            top = stack[-1]
            if top in self._memo:
                stack.pop()
                continue
            if top not in resolved:
                resolved[top] = self.resolve(top)
            drv = resolved[top]
            todo = [] if drv.is_fixed_output else [p for p in drv.input_drvs if p not in self._memo]
            if cycle := [p for p in todo if p in resolved]:  # expanded, unfinished: an ancestor
                raise BootstrapError(f"input derivation {cycle[0]} depends on itself (via {top})")
            if todo:
                stack += todo
                continue
            self._memo[top] = self.modulo(drv)
        return self._memo[path]

    def modulo(self, drv: Derivation, mask_outputs: bool = False) -> Hash:
        """Nix's hashDerivationModulo of `drv`."""
        if drv.is_fixed_output:
            out = _fixed_out(drv)
            text = f"fixed:out:{out.hash_algo}:{out.hash}:{self._fixed_path(drv, out)}"
            return hash_bytes("sha256", _encode(text))
        inputs: dict[str, set[str]] = {}
        for path, names in drv.input_drvs.items():
            inputs.setdefault(self.input_modulo(path).hex, set()).update(names)
        aterm = _unparse(drv, mask_outputs, inputs)
        return hash_bytes("sha256", _encode(aterm))

    def _fixed_path(self, drv: Derivation, out: Output) -> str:
        return fixed_output_path(out.fixed_hash(), drv.name, self.store_dir, out.recursive)

    def fill_outputs(self, drv: Derivation) -> Derivation:
        """Compute every output path and set it in `outputs` and `env`, as `derivation` does.

        Output paths already present are ignored and recomputed; each output's env variable
        is created if missing.
        """
        _check_instantiable(drv)
        blank = {name: replace(out, path="") for name, out in drv.outputs.items()}
        drv = replace(drv, outputs=blank, env={**drv.env, **dict.fromkeys(blank, "")})
        if drv.is_fixed_output:
            paths = {"out": self._fixed_path(drv, _fixed_out(drv))}
        else:
            modulo = self.modulo(drv, mask_outputs=True)
            paths = {name: output_path(modulo, name, drv.name, self.store_dir) for name in blank}
        outputs = {name: replace(out, path=paths[name]) for name, out in blank.items()}
        return replace(drv, outputs=outputs, env={**drv.env, **paths})


def _fixed_out(drv: Derivation) -> Output:
    if list(drv.outputs) != ["out"]:
        raise BootstrapError(
            f"derivation {drv.name!r}: a fixed-output derivation must have exactly one output, "
            f"'out' (has {', '.join(drv.outputs)})"
        )
    return drv.outputs["out"]


def _check_instantiable(drv: Derivation) -> None:
    where = f"derivation {drv.name!r}"
    validate_name(drv.name)
    if not drv.outputs:
        raise BootstrapError(f"{where}: expected at least one output")
    if drv.is_fixed_output:
        _fixed_out(drv)
    if not drv.builder or not drv.system:
        raise BootstrapError(f"{where}: builder and system must not be empty")
    for name, out in drv.outputs.items():
        if name == "drv":
            raise BootstrapError(f"{where}: an output may not be called 'drv'")
        validate_name(name)
        if out.hash_algo and not out.is_fixed:
            raise BootstrapError(f"{where}: output {name!r} has hashAlgo but no hash")
        if out.is_fixed:
            out.fixed_hash()
    # Nix writes `system` unescaped, so such a derivation could not be read back by Nix.
    if _NEEDS_ESCAPE.search(drv.system):
        raise BootstrapError(f'{where}: system {drv.system!r} may not contain " \\ \\n \\r or \\t')


# -- the store -----------------------------------------------------------------------------


def store_resolver(store: Store) -> Resolver:
    """Read input derivations from `store`, refusing paths that are not valid there."""

    def resolve(path: str) -> Derivation:
        if not store.is_valid(path):
            raise BootstrapError(f"input derivation {path} is not in the store at {store.root}")
        return read_drv_file(store.real_path(path))

    return resolve


def add_to_store(store: Store, drv: Derivation) -> str:
    """Write `drv` into the store as `<name>.drv`; its references must already be there."""
    path = drv_path(drv, store.store_dir)
    for reference in drv.references:
        if not store.is_valid(reference):
            raise BootstrapError(
                f"cannot add {path}: its input {reference} is not in the store at {store.root}"
            )
    return store.add_text(drv.name + DRV_EXTENSION, to_aterm(drv), drv.references)


def check_outputs(hasher: DerivationHasher, drv: Derivation, origin: str) -> None:
    """Refuse a derivation whose recorded output paths (or their env vars) are not Nix's."""
    expected = hasher.fill_outputs(drv)
    for name, out in expected.outputs.items():
        if drv.outputs[name].path != out.path:
            raise BootstrapError(
                f"{origin}: output {name!r} is recorded as {drv.outputs[name].path or '(blank)'} "
                f"but computes to {out.path}"
            )
        if drv.env.get(name) != out.path:
            raise BootstrapError(
                f"{origin}: environment variable {name!r} must be the output path {out.path}"
            )


def import_drv_files(store: Store, files: Iterable[str | PurePath]) -> list[tuple[str, Derivation]]:
    """Check `.drv` files (inputs first) and add them to `store`; return (drv path, drv) pairs.

    Every file is parsed, its output paths recomputed and its file name (if it carries a hash)
    checked against its content before anything is written, so a bad file adds nothing.
    """
    batch: dict[str, Derivation] = {}
    from_store = store_resolver(store)
    hasher = DerivationHasher(lambda path: batch.get(path) or from_store(path), store.store_dir)
    for file in files:
        drv = read_drv_file(file)
        check_store_paths(drv, store.store_dir, str(file))
        check_outputs(hasher, drv, str(file))
        path = drv_path(drv, store.store_dir)
        base = PurePath(file).name
        if base != drv.name + DRV_EXTENSION and base != PurePath(path).name:
            raise BootstrapError(f"{file}: its content makes it {path}, not {base}")
        missing = [p for p in drv.references if p not in batch and not store.is_valid(p)]
        if missing:
            raise BootstrapError(
                f"{file}: input {missing[0]} is not in the store (import inputs first)"
            )
        batch[path] = drv
    return [(add_to_store(store, drv), drv) for drv in batch.values()]
