"""What SSH signatures cost (runbook_lang.trust): sign, verify, check an approval or a seal.

    python bench/bench_trust.py [--calls 50]

Keys are made with ssh-keygen in a temporary directory (ed25519 and RSA-3072, ssh-keygen's
default size); an ssh-agent is started for the agent cases and stopped at the end. Each
figure is the mean wall time of one call, in ms, after a few warm-up calls; every call
starts one or more ssh-keygen processes, which is most of the cost. Also: the time to
import the package in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runbook_lang.trust import (  # noqa: E402
    ApprovalStatement,
    check_approval,
    check_seal,
    find_principals,
    seal_head,
    sign,
    sign_approval,
    utc_now,
    verify,
)

NS = "runbook-approval"


def mean_ms(fn, calls: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1000


def make_key(path: Path, kind: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    calls = parser.parse_args().calls
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        keys = {"ed25519": make_key(root / "ed", "ed25519"),
                "rsa": make_key(root / "rsa", "rsa")}
        pub = {k: (p.parent / (p.name + ".pub")).read_text().split()[:2]
               for k, p in keys.items()}
        signers = root / "signers"
        signers.write_text(f"alice {' '.join(pub['ed25519'])}\nbob {' '.join(pub['rsa'])}\n")
        sock = root / "agent.sock"
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not sock.exists():
                time.sleep(0.01)
            os.environ["SSH_AUTH_SOCK"] = str(sock)
            for key in keys.values():
                subprocess.run(["ssh-add", "-q", str(key)], check=True,
                               capture_output=True)
            only_pub = root / "only"
            only_pub.mkdir()
            (only_pub / "ed.pub").write_text(" ".join(pub["ed25519"]) + "\n")
            rows = run_cases(keys, signers, only_pub / "ed.pub", calls)
        finally:
            agent.terminate()
            agent.wait()
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} |")
    print(f"| import runbook_lang.trust (fresh interpreter, -X importtime total) | "
          f"{import_ms():.1f} |")


def run_cases(keys, signers, agent_pub, calls):
    data = b"x" * 300
    ed = sign(data, NS, keys["ed25519"])
    rsa = sign(data, NS, keys["rsa"])
    st = ApprovalStatement("20261129T161342Z-3f9a1c", "ab" * 32, "g", "approve", "ok",
                           utc_now(), "alice")
    signed = sign_approval(st, keys["ed25519"])
    record = {"approver": "alice", "decision": "approve", "reason": "ok",
              "statement": signed.statement, "signature": signed.signature}
    seal = seal_head(st.run_id, 41, "cd" * 32, "alice", keys["ed25519"])
    cases = [
        ("sign, ed25519 key file", lambda: sign(data, NS, keys["ed25519"])),
        ("sign, RSA key file", lambda: sign(data, NS, keys["rsa"])),
        ("sign, ed25519 in the agent (public key file)", lambda: sign(data, NS, agent_pub)),
        ("sign, the agent's first key", lambda: sign(data, NS, None)),
        ("verify, good, ed25519", lambda: verify(data, ed, "alice", NS, signers)),
        ("verify, good, RSA", lambda: verify(data, rsa, "bob", NS, signers)),
        ("verify, changed data (diagnosed)", lambda: verify(b"y", ed, "alice", NS, signers)),
        ("verify, key not listed for the name (diagnosed)",
         lambda: verify(data, ed, "bob", NS, signers)),
        ("find_principals", lambda: find_principals(data, ed, NS, signers)),
        ("check_approval, verified", lambda: check_approval(
            record, run_id=st.run_id, runbook_sha256=st.runbook_sha256, gate="g",
            signers=signers, not_before=None)),
        ("check_seal, verified", lambda: check_seal(
            seal, run_id=st.run_id, seq=41, record_hash="cd" * 32, signers=signers,
            not_before=None)),
    ]
    return [(name, mean_ms(fn, calls)) for name, fn in cases]


def import_ms() -> float:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import runbook_lang.trust"],
                         capture_output=True, text=True, cwd=ROOT).stderr
    line = next(x for x in out.splitlines() if x.rstrip().endswith("| runbook_lang.trust"))
    return int(line.split("|")[1]) / 1000


if __name__ == "__main__":
    main()
