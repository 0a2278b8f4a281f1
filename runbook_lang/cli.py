"""The `runbook` command: argument parsing and exit codes only.

Each subcommand lives in `commands/` and is imported when it runs, so `runbook --version`
and `runbook --help` do not pay for the parser, the engine or rich.
"""

from __future__ import annotations

import os
import sys

from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, RunbookError, UsageError
from .version import __version__

DESCRIPTION = """Executable runbooks: steps, checks, approval gates and rollback, with a
tamper-evident transcript of every run."""

STORE_HELP = ("a team store (postgresql://ROLE@HOST/DB; default RUNBOOK_STORE), else the "
              "local .runbook directory")

EPILOG = """exit codes: 0 succeeded, 1 failed, 2 usage/parse/static error,
3 paused at a gate, 4 rejected at a gate, 5 rollback failed, 130 interrupted"""


COMMANDS = ("check", "run", "resume", "approve", "fmt", "list", "view", "init", "verify",
            "show", "history", "store", "lsp")


class _Skipped:
    """Stands for the parser of a command the command line does not name: takes its
    arguments and drops them (building all thirteen cost a run a few milliseconds)."""

    def add_argument(self, *args, **kwargs) -> None:
        return None

    def add_subparsers(self, *args, **kwargs) -> _Skipped:
        return self

    def add_parser(self, *args, **kwargs) -> _Skipped:
        return self


def _help_width() -> int:
    """The width argparse would give help text: $COLUMNS, else the terminal's, else 80;
    less 2 (as argparse does)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


def build_parser(only: str | None = None):
    """The command line (argparse is imported here: `--version` never needs it); with
    `only`, the parser of that one command (the others are named in no message)."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        """argparse that exits 2 with our wording."""

        def error(self, message: str) -> None:  # type: ignore[override]
            self.print_usage(sys.stderr)
            sys.stderr.write(f"runbook: error: {message}\n")
            raise SystemExit(EXIT_USAGE)

        def _get_formatter(self) -> argparse.HelpFormatter:
            # argparse makes a formatter for every argument added (to check its metavar),
            # and one without a width imports shutil to ask the terminal each time.
            return self.formatter_class(prog=self.prog, width=_help_width())  # type: ignore[call-arg]

    parser = _Parser(prog="runbook", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"runbook {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    if only is not None:
        add_parser = sub.add_parser

        def add_only(name: str, **kwargs):
            return add_parser(name, **kwargs) if name == only else _Skipped()

        sub.add_parser = add_only  # type: ignore[method-assign]

    check = sub.add_parser("check", help="parse and statically check runbook files")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--output", choices=["text", "json"], default="text")
    check.add_argument("--ast", action="store_true", help="print the AST as JSON")
    run = sub.add_parser("run", help="run a runbook (or print its plan with --dry-run)")
    run.add_argument("file", metavar="FILE")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan, rollback included; change nothing")
    run.add_argument("--expand", action="store_true",
                     help="with --dry-run, show the bodies of tasks from imported modules")
    run.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a param")
    run.add_argument("--params", metavar="FILE.yaml", help="params from a YAML mapping")
    run.add_argument("--from", dest="from_step", metavar="STEP",
                     help="start a new run at STEP; earlier steps are skipped")
    run.add_argument("--approve", action="append", metavar="GATE[=WHO]",
                     help="approve a gate in advance (as WHO, default the operator)")
    run.add_argument("--yes", action="store_true", help="answer yes to every confirm")
    run.add_argument("--as", dest="as_name", metavar="NAME", help="who is running this")
    run.add_argument("--fail-at", metavar="STEP",
                     help="make STEP fail (a rollback drill; with --dry-run, show the "
                          "rollback that would follow)")
    run.add_argument("--transcript-dir", metavar="DIR",
                     help="write the transcript under DIR instead of .runbook/runs")
    run.add_argument("--store", metavar="URL", help=STORE_HELP)
    run.add_argument("--output", choices=["text", "json"], default="text",
                     help="json: the plan or the run summary as JSON on stdout")
    run.add_argument("--sign-with", metavar="KEY",
                     help="seal the transcript's head at every stop with this SSH key "
                          "(default: RUNBOOK_SIGNING_KEY, or under `signers` a key in "
                          "ssh-agent listed for you)")
    _host_arguments(run, limit=True)
    resume = sub.add_parser("resume", help="continue an interrupted, failed or paused run")
    resume.add_argument("run", nargs="?", metavar="RUN_ID|TRANSCRIPT|FILE",
                        help="default: the newest unfinished run here")
    resume.add_argument("--approve", action="append", metavar="GATE[=WHO]")
    resume.add_argument("--yes", action="store_true")
    resume.add_argument("--as", dest="as_name", metavar="NAME")
    resume.add_argument("--allow-changed", action="store_true",
                        help="continue although the runbook changed since the run started")
    resume.add_argument("--output", choices=["text", "json"], default="text")
    resume.add_argument("--store", metavar="URL", help=STORE_HELP)
    resume.add_argument("--sign-with", metavar="KEY",
                        help="seal the transcript's head at every stop with this SSH key")
    _host_arguments(resume, limit=False)

    approve = sub.add_parser("approve", help="record a decision for a run waiting at a gate")
    approve.add_argument("run_id", metavar="RUN_ID")
    approve.add_argument("gate", metavar="GATE")
    approve.add_argument("--as", dest="as_name", metavar="NAME",
                         help="who decides (default RUNBOOK_USER, else the login name; in a "
                              "team store, the connection's role)")
    approve.add_argument("--reject", action="store_true")
    approve.add_argument("--reason", metavar="TEXT")
    approve.add_argument("--store", metavar="URL", help=STORE_HELP)
    approve.add_argument("--key", metavar="FILE",
                         help="sign the decision with this SSH key (a private key, or a "
                              "public key whose private half ssh-agent holds); under "
                              "`signers` the default is a key in ssh-agent listed for NAME")

    fmt = sub.add_parser("fmt", help="rewrite runbook files into the canonical layout")
    fmt.add_argument("files", nargs="+", metavar="FILE")
    fmt.add_argument("--check", action="store_true",
                     help="change nothing; exit 1 if a file is not in the canonical layout")

    listing = sub.add_parser("list", help="the steps, checks and gates of a file")
    listing.add_argument("file", metavar="FILE")

    view = sub.add_parser("view", help="the runbook as a document for people")
    view.add_argument("file", metavar="FILE")
    view.add_argument("--format", choices=["markdown", "html"], default="markdown")

    init = sub.add_parser("init", help="write a commented starting point")
    init.add_argument("file", metavar="FILE")
    init.add_argument("--template", choices=["basic", "deploy", "incident"], default="basic")

    verify = sub.add_parser("verify", help="check a transcript's hash chain, head, snapshot "
                            "and output logs (and signatures, with --signers)")
    verify.add_argument("transcript", metavar="TRANSCRIPT", help="run id, run dir or file")
    verify.add_argument("--store", metavar="URL", help=STORE_HELP)
    verify.add_argument("--signers", metavar="FILE",
                        help="an allowed-signers file: check the head's seal and every "
                             "signed gate decision")
    verify.add_argument("--head", metavar="HASH",
                        help="the head hash kept elsewhere (as verify printed it): the "
                             "transcript must end there")

    show = sub.add_parser("show", help="the audit report of a run")
    show.add_argument("transcript", metavar="TRANSCRIPT", help="run id, run dir or file")
    show.add_argument("--store", metavar="URL", help=STORE_HELP)
    show.add_argument("--format", choices=["text", "markdown", "html", "json"], default="text")

    history = sub.add_parser("history", help="the recorded runs, newest first")
    history.add_argument("--transcript-dir", metavar="DIR",
                         help="the runs of this folder only (default: every .runbook/runs "
                              "folder under the current repository)")
    history.add_argument("--store", metavar="URL", help=STORE_HELP)
    history.add_argument("--output", choices=["text", "json"], default="text",
                         help="json: a list of objects with run_id, runbook, status, started, "
                              "operator, duration_ms")

    store = sub.add_parser("store", help="set up a team store, export a run from it")
    store_sub = store.add_subparsers(dest="store_command", metavar="ACTION",
                                     parser_class=_Parser, required=True)
    store_init = store_sub.add_parser("init", help="create or migrate the team store (as the "
                                      "database's owner)")
    store_export = store_sub.add_parser("export", help="write a run as a run directory that "
                                        "`runbook verify DIR` checks offline")
    store_export.add_argument("run_id", metavar="RUN_ID")
    store_export.add_argument("dir", metavar="DIR", help="a new (or empty) directory")
    store_clear = store_sub.add_parser("clear", help="record that the process groups a killed "
                                       "run left have ended (after checking them)")
    store_clear.add_argument("run_id", metavar="RUN_ID")
    for action in (store_init, store_export, store_clear):
        action.add_argument("--store", metavar="URL", help="the team store (default "
                            "RUNBOOK_STORE)")

    lsp = sub.add_parser("lsp", help="a Language Server for editors, on stdin/stdout "
                         "(needs the `lsp` extra)")
    # Editors' LSP clients add `--stdio` when they talk over stdin/stdout, the only way here.
    lsp.add_argument("--stdio", action="store_true", help=argparse.SUPPRESS)
    return parser


def _host_arguments(parser, limit: bool) -> None:
    """The flags of steps that run on hosts (LANGUAGE.md §11)."""
    import argparse

    def forks(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < 1:
            raise argparse.ArgumentTypeError("at least 1")
        return value

    if limit:
        parser.add_argument("--limit", metavar="PATTERN",
                            help="only these hosts: a host, a group, `web*`, `web:!canary`, "
                                 "`web:&db`, `a,b`")
    parser.add_argument("--forks", type=forks, metavar="N",
                        help="at most N hosts of a batch at a time (default 10)")
    parser.add_argument("--ssh-config", metavar="FILE",
                        help="the ssh configuration for the hosts (ssh -F; default "
                             "RUNBOOK_SSH_CONFIG, else ssh's own)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    if (argv if argv is not None else sys.argv[1:]) == ["--version"]:
        # Scripts probe the version often; answer before building the whole parser.
        sys.stdout.write(f"runbook {__version__}\n")
        return EXIT_OK
    _collect_less_often()
    given = argv if argv is not None else sys.argv[1:]
    args = build_parser(given[0] if given and given[0] in COMMANDS else None).parse_args(argv)
    if args.command is None:
        # No command is a usage error: the help goes where errors go, not to stdout.
        build_parser().print_help(sys.stderr)
        sys.stderr.write("\nrunbook: error: a command is required\n")
        return EXIT_USAGE
    handler = _HANDLERS[args.command]
    try:
        return _handle(handler, args)
    except (UsageError, RunbookError) as error:
        sys.stderr.write(f"runbook: error: {error}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`runbook history | head`): not an error worth a message.
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write("runbook: interrupted\n")
        return EXIT_INTERRUPTED
    except RecursionError:
        sys.stderr.write("runbook: error: input nested too deeply to process\n")
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - the last line of defence: never a traceback
        if os.environ.get("RUNBOOK_DEBUG"):
            raise
        sys.stderr.write(f"runbook: internal error: {type(error).__name__}: {error}\n"
                         "runbook: set RUNBOOK_DEBUG=1 to see the traceback, and please "
                         "report it\n")
        return EXIT_USAGE


def entry() -> None:
    """The `runbook` program: `main()`, then out of the process without tearing Python down.

    Freeing every module, object and cache one by one at exit takes ~8 ms once a run's
    code is loaded, a tenth of a short run, and buys nothing: files and logs are closed as
    the command goes, team-store connections by `_handle`, scratch directories by their
    owners. So once stdout and stderr are flushed, the process leaves with `os._exit`.
    """
    try:
        code = main()
    except SystemExit as done:  # argparse's --help and usage errors
        code = _exit_status(done.code)
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with that descriptor closed (`2>&-`): nothing to flush
            continue
        try:
            stream.flush()
        except BrokenPipeError:
            _silence_stdout()  # the reader went away: what is left cannot be shown
        except (OSError, ValueError):
            pass
    os._exit(code)


def _exit_status(code: object) -> int:
    """The status `raise SystemExit(code)` gives (None is 0; text is printed, status 1)."""
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code & 0xFF
    sys.stderr.write(f"{code}\n")
    return 1


def _handle(handler, args) -> int:
    """Run a command; team-store connections it opened are closed when it ends."""
    try:
        return handler(args)
    finally:
        if "runbook_lang.store" in sys.modules:
            sys.modules["runbook_lang.store"].close_stores()


def _collect_less_often() -> None:
    """Raise the cyclic garbage collector's thresholds for this process.

    Parsing a large runbook creates objects (the AST) that all live until the command ends;
    with Python's default thresholds (700, 10, 10) the collector scans them again and again
    while they are built: a quarter of `runbook check` of a 5,000-step file, a third at
    20,000 steps. With these it is a twentieth. No command allocates fast for long: a run
    spends its time waiting for its commands. A young generation of 100,000 objects also
    spares a run's start-up (its imports, parse and analysis allocate a few hundred
    thousand objects, nearly all for good) ~3 ms of collections that find nothing.
    """
    import gc

    gc.set_threshold(100_000, 50, 50)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def _check(args) -> int:
    from .commands.check import run_check

    return run_check(args)


def _run(args) -> int:
    from .commands.run import run_command

    return run_command(args)


def _store(args) -> int:
    from .commands.store import run_store

    return run_store(args)


def _lsp(args) -> int:
    from .lsp import run_lsp

    return run_lsp(args)


def _records(name: str):
    def handler(args) -> int:
        from .commands import records

        return getattr(records, f"run_{name}")(args)
    return handler


def _authoring(name: str):
    def handler(args) -> int:
        from .commands import authoring

        return getattr(authoring, f"run_{name}")(args)
    return handler


def _resume_cmd(name: str):
    def handler(args) -> int:
        from .commands import resume

        return getattr(resume, f"run_{name}")(args)
    return handler


_HANDLERS = {"check": _check, "run": _run, "verify": _records("verify"),
             "resume": _resume_cmd("resume"), "approve": _resume_cmd("approve"),
             "fmt": _authoring("fmt"), "list": _authoring("list"), "view": _authoring("view"),
             "init": _authoring("init"),
             "show": _records("show"), "history": _records("history"), "lsp": _lsp,
             "store": _store}
