"""Safe unpacking: malicious archives built here are refused; good ones match GNU tar/unzip."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from bootstrap.errors import BootstrapError
from bootstrap.fetch import download
from bootstrap.unpack import archive_format, unpack
from tests.test_fetch import NINJA

MTIME = 1_600_000_000


@dataclass(frozen=True)
class Member:
    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    linkname: str = ""
    mtime: int = MTIME


def file(name: str, data: bytes = b"data", mode: int = 0o644) -> Member:
    return Member(name, data=data, mode=mode)


def directory(name: str) -> Member:
    return Member(name, tarfile.DIRTYPE, mode=0o755, mtime=MTIME - 5)


def symlink(name: str, target: str) -> Member:
    return Member(name, tarfile.SYMTYPE, linkname=target, mtime=MTIME - 7)


def hardlink(name: str, target: str) -> Member:
    return Member(name, tarfile.LNKTYPE, linkname=target)


def make_tar(path: Path, members: list[Member], compression: str = "") -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type, info.mode, info.mtime = member.kind, member.mode, member.mtime
            info.linkname, info.size = member.linkname, len(member.data)
            tar.addfile(info, io.BytesIO(member.data) if member.kind == tarfile.REGTYPE else None)
    raw = buffer.getvalue()
    compressors = {
        "": lambda data: data,
        "gz": lambda data: gzip.compress(data, mtime=0),
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "zst": lambda data: zstandard.ZstdCompressor().compress(data),
    }
    path.write_bytes(compressors[compression](raw))
    return path


def make_zip(path: Path, entries: list[tuple[str, int, bytes]]) -> Path:
    """Entries are (name, unix mode with file type, content or symlink target)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, mode, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 9, 13, 12, 26, 40))
            info.create_system = 3
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything unpacking decides: type, mode, mtime, content or target."""
    tree: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        rel = str(path.relative_to(root))
        if stat.S_ISLNK(info.st_mode):
            tree[rel] = ("link", os.readlink(path), info.st_mtime)
        elif stat.S_ISDIR(info.st_mode):
            tree[rel] = ("dir", stat.S_IMODE(info.st_mode), info.st_mtime)
        else:
            tree[rel] = ("file", stat.S_IMODE(info.st_mode), info.st_mtime, path.read_bytes())
    return tree


GOOD = [
    directory("pkg/"),
    file("pkg/README", b"read me\n"),
    file("pkg/bin/run", b"#!/bin/sh\n", mode=0o4755),
    file("pkg/secret", b"s", mode=0o600),
    symlink("pkg/bin/readme", "../README"),
    symlink("pkg/dangling", "not/there"),
    hardlink("pkg/README.hard", "pkg/README"),
    file("./pkg/./sub//deep.txt", b"deep"),
]


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz", "zst"])
def test_tar_in_every_compression(tmp_path: Path, compression: str) -> None:
    archive = make_tar(tmp_path / f"good.tar.{compression}", GOOD, compression)
    assert (
        archive_format(archive)
        == {
            "": "tar",
            "gz": "tar+gzip",
            "bz2": "tar+bzip2",
            "xz": "tar+xz",
            "zst": "tar+zstd",
        }[compression]
    )
    dest = unpack(archive, tmp_path / "out")
    tree = snapshot(dest)
    assert tree["pkg"] == ("dir", 0o755, MTIME - 5)
    assert tree["pkg/README"] == ("file", 0o644, MTIME, b"read me\n")
    assert tree["pkg/bin/run"] == ("file", 0o755, MTIME, b"#!/bin/sh\n")
    assert tree["pkg/secret"] == ("file", 0o644, MTIME, b"s")
    assert tree["pkg/bin/readme"] == ("link", "../README", MTIME - 7)
    assert tree["pkg/dangling"] == ("link", "not/there", MTIME - 7)
    assert tree["pkg/sub/deep.txt"][3] == b"deep"
    assert tree["pkg/bin"] == ("dir", 0o755, 0)
    assert (dest / "pkg/README.hard").stat().st_ino == (dest / "pkg/README").stat().st_ino
    assert (dest / "pkg/bin/readme").read_bytes() == b"read me\n"


def test_strip_top_and_determinism(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "good.tar.gz", GOOD, "gz")
    first = unpack(archive, tmp_path / "one", strip_top=True)
    second = unpack(archive, tmp_path / "two", strip_top=True)
    assert snapshot(first) == snapshot(second)
    assert sorted(snapshot(first)) == [
        "README",
        "README.hard",
        "bin",
        "bin/readme",
        "bin/run",
        "dangling",
        "secret",
        "sub",
        "sub/deep.txt",
    ]
    assert first.stat().st_mtime == MTIME - 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.tar.gz", "one", "two"]


def test_later_member_replaces_earlier(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "dup.tar",
        [file("a", b"old"), symlink("b", "a"), file("b", b"file now"), file("a", b"new")],
    )
    tree = snapshot(unpack(archive, tmp_path / "out"))
    assert tree["a"][3] == b"new" and tree["b"][3] == b"file now"


MALICIOUS = {
    "parent": ([file("../evil")], "../evil", "'..' in path"),
    "inner-parent": ([file("pkg/../../evil")], "pkg/../../evil", "'..' in path"),
    "absolute": ([file("/tmp/evil")], "/tmp/evil", "absolute path"),
    "abs-symlink": ([symlink("l", "/etc")], "l", "symlink to absolute path '/etc'"),
    "up-symlink": ([symlink("d/l", "../../x")], "d/l", "symlink points outside the tree"),
    "chained-symlink": (
        [symlink("x/l1", ".."), symlink("l2", "x/l1/..")],
        "l2",
        "symlink points outside the tree",
    ),
    "late-chain": (
        [symlink("l2", "x/l1/../.."), symlink("x/l1", "../x")],
        "l2",
        "symlink points outside the tree",
    ),
    "beneath-symlink": (
        [directory("sub/"), symlink("l", "sub"), file("l/f")],
        "l/f",
        "lies beneath the symlink 'l'",
    ),
    "beneath-file": ([file("f"), file("f/g")], "f/g", "lies beneath the file 'f'"),
    "hardlink-out": ([hardlink("h", "../../etc/passwd")], "../../etc/passwd", "'..' in path"),
    "hardlink-abs": ([hardlink("h", "/etc/passwd")], "/etc/passwd", "absolute path"),
    "hardlink-symlink": (
        [symlink("l", "x"), hardlink("h", "l")],
        "h",
        "hardlink target 'l' is not an earlier regular file",
    ),
    "chardev": ([Member("null", tarfile.CHRTYPE)], "null", "is a character device"),
    "blockdev": ([Member("sda", tarfile.BLKTYPE)], "sda", "is a block device"),
    "fifo": ([Member("pipe", tarfile.FIFOTYPE)], "pipe", "is a fifo"),
    "dir-over-file": ([file("x"), directory("x/")], "x", "directory conflicts"),
    "loop": ([symlink("a", "b"), symlink("b", "a")], "a", "symlink loop"),
}


@pytest.mark.parametrize("case", MALICIOUS)
def test_malicious_tar_refused_and_nothing_left(tmp_path: Path, case: str) -> None:
    members, member, reason = MALICIOUS[case]
    work = tmp_path / "work"
    work.mkdir()
    archive = make_tar(tmp_path / "bad.tar.gz", members, "gz")
    with pytest.raises(BootstrapError) as error:
        unpack(archive, work / "out")
    message = str(error.value)
    assert message == f"{archive}: member {member!r}: {message.split(': ', 2)[2]}"
    assert reason in message and "\n" not in message
    assert list(work.iterdir()) == []
    assert not (tmp_path / "etc").exists() and not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([directory("a/"), file("a/x"), file("b/y")], "outside the top-level directory 'a'"),
        ([file("README")], "is not a directory; cannot strip the top level"),
        ([], "archive is empty; nothing to strip"),
    ],
)
def test_strip_top_needs_one_directory(tmp_path: Path, members: list, reason: str) -> None:
    archive = make_tar(tmp_path / "two.tar", members)
    with pytest.raises(BootstrapError, match=reason):
        unpack(archive, tmp_path / "out", strip_top=True)
    assert not (tmp_path / "out").exists()


def test_existing_destination_refused(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [file("x")])
    (tmp_path / "out").mkdir()
    with pytest.raises(BootstrapError, match="unpack destination already exists"):
        unpack(archive, tmp_path / "out")


def test_truncated_and_garbage_archives(tmp_path: Path) -> None:
    good = make_tar(tmp_path / "a.tar.xz", [file("x", os.urandom(100_000))], "xz")
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(BootstrapError, match=rf"^{cut}: cannot unpack: "):
        unpack(cut, tmp_path / "out")
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"this is not an archive" * 40)
    with pytest.raises(BootstrapError, match=rf"^{garbage}: cannot unpack: "):
        unpack(garbage, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.xz", "cut.tar.xz", "garbage.tar"]


def test_zstd_without_module_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_tar(tmp_path / "a.tar.zst", [file("x")], "zst")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(BootstrapError, match="needs the 'zstandard' Python module"):
        unpack(archive, tmp_path / "out")


def test_zip_members(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "good.zip",
        [
            ("top/", stat.S_IFDIR | 0o700, b""),
            ("top/run.sh", stat.S_IFREG | 0o750, b"#!/bin/sh\n"),
            ("top/plain.txt", 0, b"no unix mode"),
            ("top/link", stat.S_IFLNK | 0o777, b"run.sh"),
        ],
    )
    assert archive_format(archive) == "zip"
    tree = snapshot(unpack(archive, tmp_path / "out", strip_top=True))
    stamp = (tmp_path / "out").stat().st_mtime
    assert stamp == 1600000000
    assert tree == {
        "link": ("link", "run.sh", stamp),
        "plain.txt": ("file", 0o644, stamp, b"no unix mode"),
        "run.sh": ("file", 0o755, stamp, b"#!/bin/sh\n"),
    }


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (("../x", 0, b""), "'..' in path"),
        (("/abs", 0, b""), "absolute path"),
        (("l", stat.S_IFLNK | 0o777, b"../../etc"), "symlink points outside the tree"),
        (("l", stat.S_IFLNK | 0o777, b"/etc"), "symlink to absolute path"),
        (("p", stat.S_IFIFO | 0o644, b""), "is a special file"),
    ],
)
def test_malicious_zip_refused(tmp_path: Path, entry: tuple, reason: str) -> None:
    archive = make_zip(tmp_path / "bad.zip", [("ok.txt", 0, b"fine"), entry])
    with pytest.raises(BootstrapError, match=reason) as error:
        unpack(archive, tmp_path / "out")
    assert f"member {entry[0]!r}" in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip"]


def test_zip_made_by_zip_tool_matches_unzip(tmp_path: Path) -> None:
    if not (shutil.which("zip") and shutil.which("unzip")):
        pytest.skip("zip/unzip not installed")
    tree = tmp_path / "tree"
    (tree / "d" / "e").mkdir(parents=True)
    (tree / "d" / "e" / "f.txt").write_text("f")
    (tree / "tool").write_text("#!/bin/sh\n")
    (tree / "tool").chmod(0o755)
    (tree / "d" / "to-f").symlink_to("e/f.txt")
    archive = tmp_path / "t.zip"
    subprocess.run(["zip", "-qry", archive, "."], cwd=tree, check=True)
    ours = unpack(archive, tmp_path / "ours")
    subprocess.run(["unzip", "-q", archive, "-d", tmp_path / "theirs"], check=True)
    assert _content_view(ours) == _content_view(tmp_path / "theirs")


def _content_view(root: Path) -> dict[str, tuple]:
    """What two extractors must agree on: types, contents, link targets, execute bits."""
    view: dict[str, tuple] = {}
    for name, (kind, mode_or_target, _mtime, *content) in snapshot(root).items():
        if kind == "link":
            view[name] = (kind, mode_or_target)
        else:
            view[name] = (kind, bool(mode_or_target & 0o100), *content)
    return view


@pytest.mark.network
def test_real_tarball_matches_gnu_tar(tmp_path: Path) -> None:
    archive = download(NINJA.urls, NINJA.hash, progress=False)
    ours = unpack(archive, tmp_path / "ours", strip_top=True)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    subprocess.run(["tar", "-xzf", archive, "-C", theirs, "--strip-components=1"], check=True)
    ours_view, theirs_view = snapshot(ours), snapshot(theirs)
    assert len(ours_view) > 100
    assert _content_view(ours) == _content_view(theirs)
    files = [name for name, entry in ours_view.items() if entry[0] == "file"]
    assert all(ours_view[name][2] == theirs_view[name][2] for name in files)
