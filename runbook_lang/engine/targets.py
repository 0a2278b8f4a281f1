"""Where a step's commands run: this machine, or a host of the inventory over SSH.

`Executors` holds the run's executors: the local one, and one per host as steps need them
(all SSH executors of a run share one `SshConnections`: a private socket directory and one
master connection per host). `Targets` is what a run settled about hosts before its first
step: the inventory, `--limit`, `--forks`, `--ssh-config`. `step_hosts` says which hosts a
step runs on.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..dataclass import dataclass
from ..errors import Refused, StepFailed
from ..executors import Executor
from ..executors.local import LocalExecutor
from ..hints import TYPE_CHECKING

# The inventory's modules are imported where hosts come into play: a runbook that runs only
# on this machine never loads them.
if TYPE_CHECKING:
    from typing import Any

    from ..executors.ssh import SshConnections
    from ..syntax.loader import Module
    from ..targets.model import Host, Inventory

DEFAULT_FORKS = 10


class Executors:
    """The run's executors: the local one, and one per remote host as steps need them.

    `interrupt` reaches every executor (it runs in the signal handler); `close` ends every
    connection at the end of the run.
    """

    def __init__(self, base_dir: Path, ssh_config: str | None = None) -> None:
        self.local = LocalExecutor(base_dir)
        self.ssh_config = ssh_config
        self._ssh: SshConnections | None = None
        self._lock = threading.Lock()  # the hosts of a batch ask at once

    def for_host(self, host: Host | None) -> Executor:
        """The executor of a step instance's host (None: this machine)."""
        if host is None or host.connection == "local":
            return self.local
        with self._lock:
            if self._ssh is None:
                from ..executors.ssh import SshConnections

                self._ssh = SshConnections(config_file=self.ssh_config)
            connections = self._ssh
        return connections.executor(host.ssh)

    def interrupt(self) -> None:
        """Stop whatever command runs now, wherever it runs (safe in a signal handler)."""
        self.local.interrupt()
        connections = self._ssh
        if connections is not None:
            connections.interrupt()

    def close(self) -> None:
        """Close every connection the run opened."""
        self.local.close()
        with self._lock:
            connections, self._ssh = self._ssh, None
        if connections is not None:
            connections.close()


@dataclass
class Targets:
    """What a run knows about hosts before its first step."""

    # The inventory `targets` names (None: steps name ssh destinations directly).
    inventory: Inventory | None
    limit: str | None = None
    # The host names `--limit` selects (None: no limit).
    selected: set[str] | None = None
    forks: int = DEFAULT_FORKS

    def hosts(self, names: Any) -> list[Host]:
        """The hosts `on` names (a name or a list of names), narrowed by `--limit`."""
        from ..targets.model import Inventory, TargetError
        from ..targets.patterns import limit as narrow
        from ..targets.patterns import resolve, select

        if isinstance(names, str):
            wanted: list[str] = [names]
        elif isinstance(names, list) and all(isinstance(x, str) for x in names):
            wanted = names
        else:
            raise TargetError("`on` needs a host or group name, or a list of them")
        inventory = self.inventory or Inventory.from_names(wanted)
        found = resolve(inventory, wanted)
        if self.limit is not None and self.inventory is None and self.selected is None:
            # Names only known at run time, without an inventory: the pattern is matched
            # against this step's own hosts.
            try:
                return narrow(found, select(inventory, self.limit))
            except TargetError:
                return []
        return narrow(found, self.selected)


def settle_targets(module: Module, limit: str | None, forks: int,
                   ssh_config: str | None) -> Targets:
    """The inventory, `--limit` checked against it, `--forks`; Refused (exit 2) when they
    cannot be used."""
    if forks < 1:
        raise Refused(f"--forks {forks}: at least one host at a time")
    on_steps = [u for u in module.runbook.of("step") if u.on is not None]
    # Only a runbook that reaches hosts needs the file (a stale RUNBOOK_SSH_CONFIG in the
    # shell does not stop local runbooks); the message names where the path came from.
    if on_steps and ssh_config is not None and not Path(ssh_config).is_file():
        source = "RUNBOOK_SSH_CONFIG=" \
            if ssh_config == os.environ.get("RUNBOOK_SSH_CONFIG") else "--ssh-config "
        raise Refused(f"{source}{ssh_config}: no such file")
    inventory = module.inventory
    settled = Targets(inventory, limit, None, forks)
    if limit is None:
        return settled
    if not on_steps:
        raise Refused(f"--limit {limit}: no step of {module.source.path} runs on hosts")
    from ..targets.model import TargetError
    from ..targets.patterns import select

    pool = inventory or _named_hosts(module)
    if pool is None:
        return settled  # some step names its hosts at run time: matched then
    try:
        settled.selected = select(pool, limit)
    except TargetError as error:
        raise Refused(str(error)) from None
    return settled


def _named_hosts(module: Module) -> Inventory | None:
    """Without an inventory: the hosts the steps name, where every step names them as
    constants (else None)."""
    from ..analysis.constants import NOTHING, constant
    from ..targets.model import Inventory

    names: list[str] = []
    for unit in module.runbook.of("step"):
        if unit.on is None:
            continue
        value = constant(unit.on)
        if value is NOTHING:
            return None
        names.extend(value if isinstance(value, list) else [value])
    return Inventory.from_names(names)


def step_hosts(rt, unit, value) -> list[Host]:
    """The hosts of a step, given the value of its `on` expression; StepFailed says why a
    step's hosts cannot be known."""
    from ..targets.model import TargetError

    targets: Targets = rt.targets or Targets(None)
    try:
        return targets.hosts(value)
    except TargetError as error:
        raise StepFailed(str(error)) from None


def ssh_config_from_env(explicit: str | None) -> str | None:
    """`--ssh-config FILE`, else RUNBOOK_SSH_CONFIG, else None (ssh's own configuration)."""
    return explicit or os.environ.get("RUNBOOK_SSH_CONFIG") or None


# ---------------------------------------------------------------------- groups left behind

# Run on a host named in a dead run's lock note: is that command's process group still
# there? Its id and start come in the environment, never in the command text. Where /proc
# exists, a group of zombies only is gone: an init that does not reap (some containers)
# keeps them, and `kill -0` still finds them (as the local rule, executors/local.py).
_GROUP_PROBE = r"""
if ! kill -0 -"$RB_PGID" 2>/dev/null; then echo gone; exit 0; fi
if [ -r /proc/self/stat ]; then
  live=
  for f in /proc/[0-9]*/stat; do
    IFS= read -r line < "$f" 2>/dev/null || continue
    rest=${line##*) }; set -- $rest
    if [ "$3" = "$RB_PGID" ] && [ "$1" != Z ] && [ "$1" != X ]; then live=1; break; fi
  done
  if [ -z "$live" ]; then echo gone; exit 0; fi
fi
if [ -n "$RB_START" ] && [ -r "/proc/$RB_PGID/stat" ]; then
  IFS= read -r line < "/proc/$RB_PGID/stat"; rest=${line##*) }; set -- $rest
  boot=; IFS= read -r boot < /proc/sys/kernel/random/boot_id 2>/dev/null
  if [ "$boot:${20}" != "$RB_START" ]; then echo other; exit 0; fi
fi
echo alive
"""
_PROBE_TIMEOUT = 30.0


@dataclass
class RemoteGroups:
    """The remote process groups a dead run's lock note names: alive, or not checked."""

    alive: list[dict]
    unchecked: list[dict]


def check_remote_groups(rt, takeover: dict | None) -> RemoteGroups:
    """Ask each host named in a dead run's note whether the command's process group is
    still running (LANGUAGE.md §6.5). A host that cannot be reached cannot say: it is
    reported as not checked, and the run goes on (a host that is down would otherwise
    block every later run)."""
    found = RemoteGroups([], [])
    for info in (takeover or {}).get("processes") or []:
        where = info.get("host")
        if not isinstance(where, str) or not where.startswith("ssh:"):
            continue
        pgid, start = info.get("pgid"), info.get("start")
        if not isinstance(pgid, int) or isinstance(pgid, bool) or pgid <= 1:
            continue
        verdict = _probe_group(rt, where[len("ssh:"):], pgid,
                               start if isinstance(start, str) else "")
        if verdict == "alive":
            found.alive.append(info)
        elif verdict is None:
            found.unchecked.append(info)
    return found


def _probe_group(rt, name: str, pgid: int, start: str) -> str | None:
    from ..executors import CommandSpec
    from ..targets.connection import SettingError
    from ..targets.model import Inventory, TargetError

    inventory = rt.targets.inventory if rt.targets is not None else None
    try:
        host = inventory.hosts.get(name) if inventory is not None else None
        if host is None:
            host = Inventory.from_names([name]).hosts[name]
    except (TargetError, SettingError):
        return None
    out, err = _Text(), _Text()
    spec = CommandSpec(_GROUP_PROBE, env={"RB_PGID": str(pgid), "RB_START": start},
                       timeout=_PROBE_TIMEOUT)
    ended = rt.executors.for_host(host).run(spec, out, err)
    answer = out.text().strip()
    if ended.code != 0 or answer not in ("gone", "other", "alive"):
        return None
    return answer


class _Text:
    """A sink that keeps a little text (a probe's answer)."""

    def __init__(self) -> None:
        self._data = b""

    def take(self, chunk: bytes) -> None:
        self._data = (self._data + chunk)[-4096:]

    def finish(self) -> None:
        pass

    def text(self) -> str:
        return self._data.decode("utf-8", "replace")


def refuse_remote_survivors(rt, lock) -> list[dict]:
    """Refuse to start while a dead run's command still runs on a host; return the groups
    that could not be checked (recorded, and shown)."""
    takeover = getattr(lock, "takeover", None)
    if not takeover or not any(str(p.get("host", "")).startswith("ssh:")
                               for p in takeover.get("processes") or []):
        return []
    try:
        groups = check_remote_groups(rt, takeover)
    finally:
        # Nothing may stay connected if the run is refused; the run connects again.
        rt.executors.close()
    if groups.alive:
        group = groups.alive[0]
        host = group["host"][len("ssh:"):]
        raise Refused(f"run {takeover.get('run_id', '?')} (by {takeover.get('user', '?')}) "
                      f"ended without stopping its command on {host}: process group "
                      f"{group['pgid']} is still running there; stop it (ssh {host} kill "
                      f"-TERM -{group['pgid']}) or wait for it to end, then try again")
    for group in groups.unchecked:
        rt.display.line(f"note: could not check {group['host'][len('ssh:'):]} for process "
                        f"group {group['pgid']} left by run {takeover.get('run_id', '?')}: "
                        "the host did not answer", "yellow")
    return groups.unchecked
