"""How soon `runbook lsp` answers an edit with diagnostics, and whether its memory stays flat.

    python bench/bench_lsp.py [--changes 200] [--debounce-ms 100]

Starts the real server (`runbook lsp`) over stdio with pygls's client, opens
examples/deploy.runbook and sends whole-document changes that alternately break and fix a
name, one at a time, timing each from the change to the diagnostics published for its
version. The debounce is the server's own wait for a pause in typing: a figure with the
default debounce is what a user sees, one without it is the analysis alone. Target: 300 ms
from a change to its diagnostics, debounce included. The server's resident memory is read
before and after the edits (Linux /proc): a server that kept every parse would grow with
each one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "examples" / "deploy.runbook"
TARGET_MS = 300.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB (0 where /proc is not there)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def measure(changes: int, debounce_ms: float) -> dict:
    client = LanguageClient("bench", "1")
    arrived: dict[int, float] = {}
    published: dict[int, int] = {}

    @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: t.PublishDiagnosticsParams) -> None:
        if params.version is not None:
            arrived[params.version] = time.perf_counter()
            published[params.version] = len(params.diagnostics)

    await client.start_io(sys.executable, "-m", "runbook_lang", "lsp")
    pid = client._server.pid  # the server process, for its memory
    await client.initialize_async(t.InitializeParams(
        capabilities=t.ClientCapabilities(), root_uri=ROOT.as_uri(),
        initialization_options={"debounceMs": debounce_ms}))
    client.initialized(t.InitializedParams())
    uri, text = DEPLOY.as_uri(), DEPLOY.read_text(encoding="utf-8")
    broken = text.replace("{{old_url}}/version", "{{old_ur}}/version")

    async def wait_for(version: int) -> float:
        while version not in arrived:
            await asyncio.sleep(0.0005)
        return arrived[version]

    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(
        uri=uri, language_id="runbook", version=1, text=text)))
    await wait_for(1)
    # Warm up (the first analyses load the grammar's tables and the std/ modules).
    samples: list[float] = []
    rss_before = cpu_before = 0.0
    for version in range(2, changes + 12):
        if version == 12:
            rss_before, cpu_before = rss_mib(pid), cpu_seconds(pid)
        body = broken if version % 2 else text
        sent = time.perf_counter()
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[t.TextDocumentContentChangeWholeDocument(text=body)]))
        done = await wait_for(version)
        assert published[version] == (1 if version % 2 else 0), published[version]
        if version >= 12:
            samples.append((done - sent) * 1000)
    rss_after, cpu = rss_mib(pid), cpu_seconds(pid) - cpu_before
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    samples.sort()
    return {"median": statistics.median(samples), "p95": samples[int(len(samples) * 0.95) - 1],
            "max": samples[-1], "rss_before": rss_before, "rss_after": rss_after,
            "cpu_ms": cpu * 1000 / len(samples), "count": len(samples)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--debounce-ms", type=float, default=100.0,
                        help="the server's debounce (its default is 100 ms)")
    args = parser.parse_args()
    rows = [("with the debounce", asyncio.run(measure(args.changes, args.debounce_ms))),
            ("analysis alone (no debounce)", asyncio.run(measure(args.changes, 0)))]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"examples/deploy.runbook, {args.changes} changes each; ms from a change to its "
          f"diagnostics ({os.cpu_count()} CPUs, load average {load:.1f})")
    print(f"{'':30} {'median':>7} {'p95':>7} {'max':>7} {'CPU/change':>11} "
          f"{'RSS before':>11} {'RSS after':>10}")
    for label, row in rows:
        print(f"{label:30} {row['median']:7.1f} {row['p95']:7.1f} {row['max']:7.1f} "
              f"{row['cpu_ms']:9.1f} ms {row['rss_before']:9.1f} M {row['rss_after']:8.1f} M")
    worst = rows[0][1]["p95"]
    verdict = "meets" if worst <= TARGET_MS else "misses"
    print(f"p95 with the debounce {worst:.0f} ms: {verdict} the {TARGET_MS:.0f} ms target")
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
