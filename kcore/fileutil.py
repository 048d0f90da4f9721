"""Atomic writes of private files (keys, tokens, kubeconfigs).

A crash mid-write must never leave a truncated key or a world-readable secret: the
data goes to a temporary file in the same directory, which gets its final mode
*before* it becomes visible under the real name, then is renamed over the target.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private_file(path: str | os.PathLike[str], data: bytes | str, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with permissions ``mode``.

    The temp file is created 0600 by ``mkstemp``, so the secret is never readable by
    others even for an instant; the parent directory is fsynced so the rename is
    durable too.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename; some platforms cannot open directories, which is fine."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
