"""The grammar's LALR tables, compiled by Lark from `grammars/runbook.lark` and kept beside it.

The parser (`lalr.py`) needs only data from Lark: the parse table (states, shifts, reductions),
the terminals and how each rule's reduction shapes its children. That data is written to
`grammars/runbook.tables.json`, so that `runbook` reads a file instead of importing Lark to
parse. The file names the SHA-256 of the grammar it was compiled from: if the grammar has
changed since, the tables are compiled again at run time (slower, same result), and the test
suite says the file is stale.

States are numbered in a canonical order (breadth first from the start states, symbols in
sorted order), so the file is the same whichever hash seed Lark's compilation ran with. Each
state is kept as a line of text, `SYMBOL:TARGET,…|SYMBOL:TARGET,…` (its actions, then its
gotos), decoded when the parser first enters it: a file visits a few dozen of the 381 states,
and decoding them all as JSON took more of a run's start than parsing a small runbook.

    python -m runbook_lang.syntax.tables      # rewrite grammars/runbook.tables.json
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import resources
from ..digest import sha256_hex
from ..hints import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

FORMAT = 2
START_SYMBOLS = ("start", "expr")

# How a reduction treats what it pops (see lalr.Plan).
PASS1, PASS, SPLICE, BUILD = 0, 1, 2, 3


def tables_path() -> Path:
    """Where the compiled tables live: beside the grammar."""
    return resources.grammar_path().with_name("runbook.tables.json")


def load() -> dict[str, Any]:
    """The tables of the grammar as it is now: from the file if it is current, else compiled."""
    text = resources.grammar_text()
    digest = sha256_hex(text.encode("utf-8"))
    try:
        data = json.loads(tables_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("format") == FORMAT and data.get("grammar") == digest:
        return data
    return compile_tables(text)


def compile_tables(text: str) -> dict[str, Any]:
    """Compile the grammar's text with Lark into the tables the parser runs."""
    from lark import Lark

    lark = Lark(text, parser="lalr", lexer="contextual", start=list(START_SYMBOLS),
                maybe_placeholders=True, cache=True)
    table = lark.parser.parser.parser.parse_table  # Lark's LALR parser and its table
    terminals = {t.name: t for t in lark.terminals}
    order = _canonical_order(table, START_SYMBOLS)
    number = {state: i for i, state in enumerate(order)}
    plans: list[list] = []
    plan_index: dict[int, int] = {}
    states = []
    for state in order:
        actions: dict[str, int] = {}
        gotos: dict[str, int] = {}
        for symbol, (action, arg) in sorted(table.states[state].items()):
            if action.name == "Shift":
                target = number[arg]
                if symbol in terminals or symbol == "$END":
                    actions[symbol] = target
                else:
                    gotos[symbol] = target
            else:
                if id(arg) not in plan_index:
                    plan_index[id(arg)] = len(plans)
                    plans.append(_plan(arg))
                actions[symbol] = -1 - plan_index[id(arg)]  # a reduction: -1 - its plan
        states.append(_state_text(actions, gotos))
    return {
        "format": FORMAT,
        "grammar": sha256_hex(text.encode("utf-8")),
        "start": {name: number[table.start_states[name]] for name in START_SYMBOLS},
        "end": {name: number[table.end_states[name]] for name in START_SYMBOLS},
        "ignore": sorted(lark.lexer_conf.ignore),
        "terminals": {name: [t.pattern.type, t.pattern.to_regexp(), t.pattern.value,
                             t.priority, t.pattern.max_width, sorted(t.pattern.flags)]
                      for name, t in sorted(terminals.items())},
        "plans": plans,
        "states": states,
    }


def _canonical_order(table: Any, starts: tuple[str, ...]) -> list[int]:
    """Lark's states, breadth first from the start states, each state's symbols sorted."""
    order: list[int] = []
    seen: set[int] = set()
    queue = [table.start_states[name] for name in starts]
    for state in queue:
        if state in seen:
            continue
        seen.add(state)
        order.append(state)
        queue.extend(arg for _, (action, arg) in sorted(table.states[state].items())
                     if action.name == "Shift" and arg not in seen)
    order.extend(sorted(set(table.states) - seen))  # states no shift reaches (end states)
    return order


def _plan(rule: Any) -> list:
    """A rule's reduction, as Lark's tree builder (LALR, maybe_placeholders) does it:
    [size, origin, callback name, kind, child, include, trailing Nones, expand1, pick]."""
    expansion = rule.expansion
    options = rule.options
    nones_at = [0] * (len(expansion) + 1)
    if options.empty_indices:
        runs = "".join(str(int(b)) for b in options.empty_indices).split("0")
        nones_at = [len(ones) for ones in runs]
    include: list[list] = []  # [child, spliced, Nones before it]
    pending = 0
    for i, symbol in enumerate(expansion):
        pending += nones_at[i]
        if options.keep_all_tokens or not (symbol.is_term and symbol.filter_out):
            include.append([i, not symbol.is_term and symbol.name.startswith("_"), pending])
            pending = 0
    trailing = pending + nones_at[len(expansion)]
    name = rule.alias or options.template_source or rule.origin.name
    expand1 = bool(options.expand1 and not rule.alias)
    if rule.origin.name.startswith("_"):
        assert not expand1, rule
        kind = SPLICE
    elif expand1 and len(include) == 1 and not include[0][1] and not include[0][2] \
            and not trailing:
        kind = PASS1 if len(expansion) == 1 else PASS
    else:
        kind = BUILD
    plain = not trailing and not any(spliced or nones for _, spliced, nones in include)
    pick: list[int] | None = []
    if plain and [i for i, _, _ in include] == list(range(len(expansion))):
        pick = None
    elif plain:
        pick = [i for i, _, _ in include]
    return [len(expansion), rule.origin.name, name, kind, include[0][0] if include else 0,
            include, trailing, expand1, pick]


def write() -> Path:
    """Compile the grammar and write its tables beside it; returns the file's path."""
    path = tables_path()
    path.write_text(dumps(compile_tables(resources.grammar_text())), encoding="utf-8")
    return path


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _state_text(actions: dict[str, int], gotos: dict[str, int]) -> str:
    for symbol in [*actions, *gotos]:
        assert not set(symbol) & set(":,|"), symbol  # Lark's names: letters, digits, _ and $
    return "|".join(",".join(f"{symbol}:{target}" for symbol, target in sorted(side.items()))
                    for side in (actions, gotos))


def decode_state(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """A state's (actions, gotos) from its line in the file (see the module's doc)."""
    actions, _, gotos = text.partition("|")
    return _targets(actions), _targets(gotos)


def _targets(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    if text:
        for pair in text.split(","):
            symbol, _, target = pair.partition(":")
            found[symbol] = int(target)
    return found


def dumps(data: dict[str, Any]) -> str:
    """The tables as JSON, one terminal, plan or state a line (so a diff can be read)."""
    compact = _compact

    lines = ["{"]
    for key in sorted(data):
        value = data[key]
        if isinstance(value, list) and key in ("plans", "states"):
            lines.append(f"{compact(key)}:[")
            lines.extend(compact(item) + ("," if i < len(value) - 1 else "")
                         for i, item in enumerate(value))
            lines.append("],")
        elif isinstance(value, dict) and key == "terminals":
            lines.append(f"{compact(key)}:{{")
            names = sorted(value)
            lines.extend(f"{compact(name)}:{compact(value[name])}"
                         + ("," if i < len(names) - 1 else "") for i, name in enumerate(names))
            lines.append("},")
        else:
            lines.append(f"{compact(key)}:{compact(value)},")
    lines[-1] = lines[-1].rstrip(",")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(f"wrote {write()}")
