"""Approval gates: a gate never passes silently (LANGUAGE.md §6.3).

Approvals come from `--approve GATE[=NAME]`, from `runbook approve` (stored with the run and
written to the transcript on resume) or from a person at the terminal. Each becomes a `Vote`
and goes through one rule book (`consider`): only names in `approvers` count (anyone when
the gate names none), each name once, and the operator not at all under `self_approval
false`; under `signers`, only with a valid signature (`signoff`). Without enough approvals
and without a terminal the run pauses (exit 3) and says how to approve and resume.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..dataclass import dataclass, field
from ..evaluation.values import Duration, Unknown, to_text
from ..syntax import nodes as n
from ..trust.errors import TrustError
from ..trust.statements import utc_now
from .approvals import Quorum
from .plan import PlanStep
from .runtime import Frame, Runtime, StepRun
from .signoff import RunTrust, Vote, agent_key_for


@dataclass
class GateRules:
    """A gate's evaluated settings, and the approvals counted so far."""

    name: str
    title: str
    quorum: Quorum
    timeout: Duration | None
    message: str
    approved: list[str] = field(default_factory=list)

    @property
    def approvers(self) -> list[str] | None:
        return list(self.quorum.approvers) if self.quorum.approvers is not None else None

    @property
    def require(self) -> int:
        return self.quorum.require

    def refusal(self, who: str, operator: str) -> str | None:
        """Why `who` cannot approve this gate (None when the vote counts)."""
        refusal = self.quorum.refusal(who, operator, self.approved)
        return refusal.message() if refusal is not None else None

    def describe(self) -> str:
        return self.quorum.describe(self.timeout)


class Gates:
    """Runs gates for the interpreter."""

    def __init__(self, rt: Runtime, interpreter) -> None:
        self.rt = rt
        self.interpreter = interpreter

    def rules(self, gate: n.Gate, frame: Frame) -> GateRules:
        value = self.interpreter.statements.value
        approvers = value(gate.approvers, frame) if gate.approvers is not None else None
        require = value(gate.require, frame) if gate.require is not None else 1
        timeout = value(gate.timeout, frame) if gate.timeout is not None else None
        self_approval = value(gate.self_approval, frame) if gate.self_approval is not None \
            else True
        message = self.interpreter.statements.text(gate.message, frame) if gate.message else ""
        quorum = Quorum(gate.name.name,
                        tuple(to_text(a) for a in approvers) if isinstance(approvers, list)
                        else None,
                        require if isinstance(require, int) else 1,
                        self_approval if isinstance(self_approval, bool) else True)
        return GateRules(gate.name.name, self.interpreter.title(gate, frame), quorum,
                         timeout if isinstance(timeout, Duration) else None, message)

    def run(self, gate: n.Gate, number: str) -> str:
        """'approved', 'skipped', 'paused' or 'rejected'."""
        name = gate.name.name
        instance = StepRun(gate, name, "", number)
        frame = Frame(instance, self.rt.module)
        when = self.interpreter.condition(gate.when, frame) if gate.when is not None else True
        rules = self.rules(gate, frame)
        instance.title = rules.title
        if self.rt.dry:
            return self.plan(gate, number, rules, when, frame)
        if when is False:

            self.interpreter.skip(gate, number, f"when {frame.source(gate.when)} is false")
            return "skipped"
        return self.decide(gate, instance, rules, number)

    def plan(self, gate: n.Gate, number: str, rules: GateRules, when, frame: Frame) -> str:

        status, reason = "will run", ""
        if when is False:
            status, reason = "skipped", f"when {frame.source(gate.when)} is false"
        elif isinstance(when, Unknown):
            status, reason = "decided at run time", f"when {frame.source(gate.when)}"
        entry = PlanStep(number.split("/")[0], gate.name.name, "gate", self.rt.mask(rules.title),
                         status, reason)
        entry.attributes = {"approval": rules.describe()}
        if rules.message:
            entry.attributes["message"] = self.rt.mask(rules.message)
        flagged = [who or self.rt.options.operator
                   for who in self.rt.options.approvals.get(gate.name.name, [])]
        if flagged:
            entry.attributes["pre-approved"] = ", ".join(flagged)
        self.rt.recorder.start(entry)
        return "approved"

    @property
    def trust(self) -> RunTrust:
        trust = self.rt.trust
        return trust if trust is not None else RunTrust(None, self.rt.options.operator)

    @property
    def starter(self) -> str:
        """The operator who started the run: whom `self_approval false` excludes."""
        return self.rt.resume.operator_at_start or self.rt.options.operator

    def decide(self, gate: n.Gate, instance: StepRun, rules: GateRules, number: str) -> str:
        started = time.monotonic()
        self.rt.sync()
        self.rt.record("step_started", step=rules.name, title=rules.title, attempt=1)
        self.rt.display.step_started(number, rules.name, rules.title)
        self.rt.display.stop_spinner()
        if rules.message:
            self.rt.display.line(f"    {self.rt.mask(rules.message)}")
        self.rt.display.line(f"    gate {rules.name} {rules.describe()}")
        if self.trust.verifies:
            self.rt.display.line(f"    each decision must be signed (signers "
                                 f"{self.trust.signers})")
        self.show_what_follows(gate)
        # Approvals given before a pause count after a resume; new ones are recorded now.
        rules.approved.extend(self.rt.resume.prior_approvals.get(rules.name, []))
        waiting_since = self.rt.resume.gate_waiting_since.get(rules.name)
        if waiting_since is not None and rules.timeout is not None \
                and self.rt.clock.time() - waiting_since > rules.timeout.seconds:
            self.rt.record("gate_timed_out", gate=rules.name, approver=None, method=None,
                           reason=f"no quorum within {rules.timeout}", host=self.rt.options.host)
            return self.finish(instance, rules, started, "timed out")
        verdict = self.collect_stored(rules)
        if verdict is not None:
            return self.finish(instance, rules, started, verdict)
        verdict = self.collect_flags(rules)
        if verdict is None and rules.quorum.met(rules.approved):
            verdict = "approved"
        if verdict is None and self.rt.options.interactive:
            self.waiting(rules, "terminal")
            verdict = self.ask(rules, started)
        if verdict is None:
            self.pause(rules)
            return "paused"
        return self.finish(instance, rules, started, verdict)

    def finish(self, instance: StepRun, rules: GateRules, started: float, verdict: str) -> str:
        """Record the gate's end: 'approved', or 'rejected' (also for a timeout)."""
        ms = int((time.monotonic() - started) * 1000)
        status = "succeeded" if verdict == "approved" else "failed"
        reason = "" if verdict == "approved" else f"gate {verdict}"
        self.rt.record("step_finished", step=rules.name, title=rules.title, attempt=1,
                       status=status, reason=reason, duration_ms=ms)
        self.rt.display.step_finished(rules.name, "succeeded" if status == "succeeded"
                                      else "rejected", ms, reason)
        # The record keeps `failed` with its reason; the summary says what happened.
        instance.status = status if status == "succeeded" else "rejected"
        instance.duration_ms = ms
        self.interpreter.add_ran(instance)
        return "approved" if verdict == "approved" else "rejected"

    # ------------------------------------------------------------------ votes

    def consider(self, rules: GateRules, vote: Vote) -> str | None:
        """Count one vote by the gate's rules: 'rejected' for a rejection that counts, else
        None (approved and recorded, or refused and said why)."""
        problem = rules.refusal(vote.approver, self.starter)
        role = self.rt.options.role
        if role is not None and vote.method in ("flag", "terminal"):
            # A team store: the person here is the connection's role, and nobody else.
            vote.by_role = vote.approver == role
            if not vote.by_role and problem is None:
                problem = (f"this run's connection is role {role}; {vote.approver} decides "
                           "with `runbook approve` from their own connection")
        if problem is None and self.trust.verifies:
            try:
                check = self.trust.check(vote, rules.name)
            except TrustError as error:  # no ssh-keygen, the signers file gone: not counted
                # now, and looked at again by the next resume (the vote may be good).
                vote.decision_id = None
                self.refuse(rules, vote, f"the signature cannot be checked: {error}")
                return None
            if not check.verified:
                problem = check.reason
            elif not rules.quorum.self_approval:
                problem = self.trust.operators_own(check)
            if problem is None:
                vote.key = check.fingerprint
        if problem is not None:
            self.refuse(rules, vote, problem)
            return None
        if vote.decision == "reject":
            self.rt.record("gate_rejected", gate=rules.name, **vote.fields())
            self.rt.display.line(f"    ✗ rejected by {vote.approver} "
                                 f"({vote.method.replace('-', ' ')}{self.identity(vote)})",
                                 "red")
            return "rejected"
        self.approve(rules, vote)
        return None

    def approve(self, rules: GateRules, vote: Vote) -> None:
        rules.approved.append(vote.approver)
        self.rt.record("gate_approved", gate=rules.name, **vote.fields())
        self.rt.display.line(f"    ✓ approved by {vote.approver} ({vote.method}"
                             f"{self.identity(vote)})", "green")

    def identity(self, vote: Vote) -> str:
        return f", signed with key {vote.key}" if vote.key else ""

    def refuse(self, rules: GateRules, vote: Vote, problem: str) -> None:
        """A vote that does not count: said where it came from; kept in the record under
        `signers`, so that an audit sees every attempt."""
        if self.trust.verifies:
            self.rt.record("gate_refused", gate=rules.name, decision=vote.decision,
                           refusal=problem, **vote.fields())
        if vote.method == "flag":
            self.rt.display.line(f"    --approve ignored: {problem}", "yellow")
        elif vote.method == "terminal":
            sys.stderr.write(f"    not counted: {problem}\n")
        else:
            self.rt.display.line(f"    not counted: {vote.approver}'s decision (runbook "
                                 f"approve): {problem}", "yellow")

    def collect_flags(self, rules: GateRules) -> str | None:
        """`--approve GATE[=WHO]`; under `signers` only the operator's own, signed here with
        the operator's key (anything else was refused before the run started)."""
        operator = self.rt.options.operator
        for who in self.rt.options.approvals.get(rules.name, []):
            vote = Vote(who or operator, "approve", "--approve on the command line", "flag",
                        self.rt.options.host, utc_now())
            if self.trust.verifies and self.trust.key is not None \
                    and rules.refusal(vote.approver, self.starter) is None:
                try:
                    self.trust.sign(rules.name, vote, self.trust.key.spec)
                except TrustError as error:
                    self.refuse(rules, vote, f"cannot sign: {error}")
                    continue
            if self.consider(rules, vote) == "rejected":
                return "rejected"
        return None

    def collect_stored(self, rules: GateRules) -> str | None:
        """Decisions made with `runbook approve` while the run waited; 'rejected' on a no."""
        for decision in self.rt.resume.stored_decisions.get(rules.name, []):
            vote = Vote.stored(decision)
            if vote.approver in rules.approved or vote.decision_id in self.trust.recorded:
                continue  # already in the transcript
            if vote.decision_id:
                self.trust.recorded.add(vote.decision_id)
            if not self.trust.verifies and vote.decision == "approve" and \
                    rules.refusal(vote.approver, self.starter) is not None:
                continue  # as before signatures: a stale vote is skipped quietly
            if self.consider(rules, vote) == "rejected":
                return "rejected"
        return "approved" if rules.quorum.met(rules.approved) else None

    def ask(self, rules: GateRules, started: float) -> str | None:
        """Ask at the terminal until the quorum is met, someone rejects, or time runs out."""
        operator = self.rt.options.operator
        deadline = started + rules.timeout.seconds if rules.timeout is not None else None
        try:
            return self.ask_until(rules, operator, deadline)
        except EOFError:
            # The terminal closed (end of input): nobody is left to ask, so the gate waits
            # for `runbook approve` as it would without a terminal.
            self.rt.display.line("    the terminal closed: no more answers here")
            return None
        except TimeoutError:
            self.rt.record("gate_timed_out", gate=rules.name, approver=None,
                           method="terminal", reason=f"no quorum within {rules.timeout}",
                           host=self.rt.options.host)
            return "timed out"

    def ask_until(self, rules: GateRules, operator: str, deadline: float | None) -> str:
        """The prompt loop of `ask`; raises TimeoutError at the deadline."""
        while not rules.quorum.met(rules.approved):
            who = self.prompt(f"    approver name [{operator}]: ", deadline) or operator
            problem = rules.refusal(who, self.starter)
            if problem is not None:
                sys.stderr.write(f"    not counted: {problem}\n")
                continue
            answer = self.prompt("    approve or reject? [a/r]: ", deadline).lower()
            if answer not in ("a", "approve", "r", "reject"):
                sys.stderr.write("    answer a (approve) or r (reject)\n")
                continue
            reason = self.prompt("    reason: ", deadline)
            vote = Vote(who, "approve" if answer.startswith("a") else "reject", reason,
                        "terminal", self.rt.options.host, utc_now())
            if self.trust.verifies and not self.sign_at_terminal(rules, vote, deadline):
                continue
            if self.consider(rules, vote) == "rejected":
                return "rejected"
        return "approved"

    def sign_at_terminal(self, rules: GateRules, vote: Vote, deadline: float | None) -> bool:
        """Under `signers`: sign the vote with the approver's key, asked for here (Enter:
        the operator's own key for the operator, else a key ssh-agent holds for the name)."""
        trust = self.trust
        assert trust.signers is not None
        own = trust.key if vote.approver == self.rt.options.operator else None
        default = "your --sign-with key" if own is not None else "ssh-agent"
        typed = self.prompt(f"    key to sign as {vote.approver} (a key file; Enter: "
                            f"{default}): ", deadline)
        key = os.path.expanduser(typed) if typed else \
            own.spec if own is not None else agent_key_for(vote.approver, trust.signers)
        if key is None:
            self.refuse(rules, vote, f"ssh-agent holds no key listed for {vote.approver} in "
                        f"{trust.signers} (type the path of {vote.approver}'s key)")
            return False
        try:
            trust.sign(rules.name, vote, key)
        except TrustError as error:
            self.refuse(rules, vote, f"cannot sign: {error}")
            return False
        return True

    def show_what_follows(self, gate: n.Gate) -> None:
        """What an approval lets run: the steps after this gate, in order."""
        units = self.interpreter.units
        index = units.index(gate)
        rest = units[index + 1:]
        if not rest:
            self.rt.display.line("    approving ends the run (no step follows)")
            return
        self.rt.display.line("    approving lets these run next:")
        for number, unit in enumerate(rest, index + 2):
            kind = {"step": "step", "check_step": "check", "gate": "gate"}[unit.kind]
            title = self.interpreter.title(unit, Frame(StepRun(unit, unit.name.name, "", ""),
                                                       self.rt.module))
            self.rt.display.line(f"      {number}. {kind} {unit.name.name}: {title}")

    def prompt(self, text: str, deadline: float | None = None) -> str:
        """One answer from the terminal; EOFError when it closes, TimeoutError at the gate's
        deadline (a person who walked away must not hold the gate open)."""
        sys.stderr.write(text)
        sys.stderr.flush()
        try:
            line = self.rt.interrupts.readline(sys.stdin, deadline)
        except TimeoutError:
            sys.stderr.write("\n")
            raise
        if not line:
            raise EOFError()
        return line.strip()

    def waiting(self, rules: GateRules, method: str | None) -> None:
        """Record that the gate starts waiting (at the terminal, or paused), with the rules
        `runbook approve` reads while the run is not running."""
        trust = self.trust
        self.rt.record("gate_waiting", gate=rules.name, approver=None, method=method,
                       reason=rules.describe(), host=self.rt.options.host,
                       approvers=rules.approvers, require=rules.require,
                       approved=rules.approved, self_approval=rules.quorum.self_approval,
                       # The operator who started the run, whoever resumed it since: that is
                       # who `self_approval false` excludes (`runbook approve` reads this).
                       operator=self.starter,
                       timeout_ms=rules.timeout.ms if rules.timeout else None,
                       **({"signers": str(trust.signers)} if trust.verifies else {}))

    def pause(self, rules: GateRules) -> None:
        run_id = self.rt.scope.builtins.get("run_id", "RUN_ID")
        self.waiting(rules, None)
        missing = rules.quorum.missing(rules.approved)
        self.rt.display.line(f"⏸ waiting at gate {rules.name}: {missing} more approval"
                             f"{'s' if missing != 1 else ''} needed ({rules.describe()})",
                             "yellow")
        signed = " --key KEY" if self.trust.verifies else ""
        # In a team store each approver connects as their own role: no name to give.
        who = "" if self.rt.options.role is not None else " --as NAME"
        ref = self.resume_ref(run_id)
        self.rt.display.line("  approve:  runbook approve "
                             f"{ref} {rules.name}{who}{signed} [--reason TEXT]")
        self.rt.display.line(f"  then:     runbook resume {ref}")

    def resume_ref(self, run_id: str) -> str:
        """What `runbook approve` and `runbook resume` need to find this run from here: its
        id where the working directory's store finds it, else its transcript's path."""
        run_dir = getattr(self.rt.recorder, "run_dir", None)
        if run_dir is None:
            return run_id
        run_dir = Path(run_dir).resolve()
        if run_dir == (Path.cwd() / ".runbook" / "runs" / run_id).resolve():
            return run_id
        transcript = run_dir / "transcript.jsonl"
        try:
            return str(transcript.relative_to(Path.cwd()))
        except ValueError:
            return str(transcript)
