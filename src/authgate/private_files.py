"""Files and directories only the server's own user may read: the SQLite database
(password hashes, session records) and the data directory (the
server secret). Their modes are set explicitly, never left to the umask.

Imports nothing from authgate: storage, crypto and the CLI all use it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_directory(path: Path, *, warn_existing: bool = False) -> bool:
    """Create ``path`` with mode 0700 (missing parents get the default mode).

    An existing directory is left as it is (an operator may have chosen its mode);
    with ``warn_existing``, a warning says so when group or others can read it.
    Returns whether it was created."""
    if path.is_dir():
        if warn_existing:
            warn_if_exposed(path)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIRECTORY_MODE)
    except FileExistsError:  # another worker or instance was first
        return False
    # mkdir's mode is filtered by the umask (0 would still give 0700, 0o077 too, but
    # 0o277 would give 0500): set it exactly.
    os.chmod(path, PRIVATE_DIRECTORY_MODE)
    return True


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists. Returns whether it was created.

    O_EXCL: of two processes starting at once, one creates it and the other uses it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        warn_if_exposed(path)
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return True


def warn_if_exposed(path: Path) -> None:
    """Log a warning naming ``path`` when group or others have any access to it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        wanted = PRIVATE_DIRECTORY_MODE if path.is_dir() else PRIVATE_FILE_MODE
        logger.warning(
            "%s is accessible to group or others (mode %04o); it holds private data: chmod %o %s",
            path,
            mode,
            wanted,
            path,
        )
