"""Hard link, reflink or copy one file: how a delta update reuses the installed revision's bytes."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

_FICLONE = 0x40049409  # Linux ioctl: clone src's extents into dst (btrfs, xfs, ...)


def link_or_copy(src: Path, dst: Path) -> str:
    """Put `src`'s bytes at `dst`: a hard link (shares the inode; model files are never written in
    place), a reflink (shares blocks copy-on-write), or a copy as the last resort (another filesystem)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(dst):
        dst.unlink()
    try:
        os.link(src, dst)
        return "hardlink"
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
    if _reflink(src, dst):
        return "reflink"
    shutil.copyfile(src, dst)
    return "copy"


def _reflink(src: Path, dst: Path) -> bool:
    try:
        import fcntl
    except ImportError:  # not on this platform
        return False
    try:
        with open(src, "rb") as source, open(dst, "wb") as target:
            fcntl.ioctl(target.fileno(), _FICLONE, source.fileno())
        return True
    except OSError:
        dst.unlink(missing_ok=True)
        return False
