"""Who may read and write a run directory of the local store (LANGUAGE.md §9).

A run's record holds commands, hosts, masked outputs and approvals: by default only its
operator reads it. Run directories are created 0700 and their files 0600, whatever the
umask says.

A team on one machine shares runs through a folder its administrator prepares:

    mkdir -p /srv/runbook/runs && chgrp release /srv/runbook/runs
    chmod 2770 /srv/runbook/runs        # setgid, group read-write, nobody else

When the folder a run directory is created in is setgid and group-writable, the run
directory is created 2770 and its files 0660: the kernel gives them the folder's group (the
setgid bit), so every member can read the run, `runbook approve` it and `runbook resume` it,
and nobody outside the group can. The mode is set explicitly after creation, since a umask of
022 would otherwise drop the group's write bit.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ..dataclass import dataclass
from ..errors import StoreError

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
SHARED_DIR, SHARED_FILE = 0o2770, 0o660


@dataclass(frozen=True)
class Access:
    """The modes a run directory and its files get."""

    dir_mode: int
    file_mode: int

    @property
    def shared(self) -> bool:
        return self.dir_mode == SHARED_DIR


PRIVATE = Access(PRIVATE_DIR, PRIVATE_FILE)
SHARED = Access(SHARED_DIR, SHARED_FILE)


def is_shared(folder: Path) -> bool:
    """Whether `folder` is set up for a team: setgid and group-writable."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_ISGID and mode & stat.S_IWGRP)


def access_in(folder: Path) -> Access:
    """The access of what is created in `folder` (a runs folder, or a run directory)."""
    return SHARED if is_shared(folder) else PRIVATE


def make_dir(path: Path, access: Access) -> None:
    """Create `path` with `access.dir_mode` (its parents as the umask allows); an existing
    directory is left as it is."""
    if path.is_dir():
        return
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        return  # created meanwhile by someone else: theirs
    os.chmod(path, access.dir_mode)


def open_file(path: Path, flags: int, access: Access) -> int:
    """Open `path`; a file this call creates gets exactly `access.file_mode`."""
    created = bool(flags & os.O_CREAT) and (bool(flags & os.O_EXCL) or not path.exists())
    fd = os.open(path, flags | os.O_CLOEXEC, access.file_mode)
    if created:
        with contextlib.suppress(OSError):  # not ours: its owner's mode stays
            os.fchmod(fd, access.file_mode)
    return fd


def write_file(path: Path, data: bytes, access: Access) -> None:
    """Replace `path` with `data` at once (a temporary file renamed over it)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_file(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, access)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


@contextlib.contextmanager
def reading(what: str, where: Path | str) -> Iterator[None]:
    """Turn a permission error into a `StoreError` that says whose the run is and why."""
    try:
        yield
    except PermissionError as error:
        raise StoreError(f"cannot {what}: {error.filename or where}: permission denied"
                         f"{_owner(Path(error.filename or where))}") from None


def _owner(path: Path) -> str:
    """' (the run directory is alice's, group release, mode 2770: …)' where it can be read."""
    for candidate in (path, *path.parents):
        try:
            info = candidate.stat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode):
            continue
        owner = _name(info.st_uid, "pwd")
        group = _name(info.st_gid, "grp")
        mode = stat.S_IMODE(info.st_mode)
        hint = ("ask to be added to that group" if mode & stat.S_IRWXG
                else "it is private to its owner (see docs/transcript.md, sharing runs)")
        return f" ({candidate} belongs to {owner}, group {group}, mode {mode:o}: {hint})"
    return ""


def _name(number: int, table: str) -> str:
    try:
        if table == "pwd":
            import pwd

            return pwd.getpwuid(number).pw_name
        import grp

        return grp.getgrgid(number).gr_name
    except (KeyError, ImportError):
        return str(number)
