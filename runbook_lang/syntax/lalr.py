"""The grammar as LALR tables and scanners, and the loop that runs them over a text.

Lark compiles `grammars/runbook.lark` (LALR, contextual lexer) once and caches the result on
disk. This module takes Lark's parse table, rules and terminals and runs them with a loop of
its own, because Lark's loop builds a parse tree first, with positions on every node, which
the transformer then walks again: for a large file that was most of `runbook check`. Here each
reduction hands its children straight to a callback (`reduce`), with the first and last token
it covers, so the AST is built as the text is read.

The loop reproduces what Lark's parser with its contextual lexer does, token for token:

- in each parser state only the terminals that state accepts are tried, in Lark's order, and
  a word is a keyword only where the state accepts that keyword (otherwise it is a NAME);
- children are filtered as Lark's tree builder does (anonymous tokens dropped, `_rule`s
  inlined, `None` for a missing `[optional]`), a `?rule` with one child passes it through,
  and positions cover what Lark's `propagate_positions` covers;
- errors carry what Lark's would: the unexpected token (or character), the terminals that
  were expected, and the parser's stacks.

Two rules of this language live in the lexer too: brackets nest at most MAX_NESTING deep,
and a contextual word written straight before `(`, `.` or `=` is a name (see CONTEXTUAL).

All state is in the `Parse` of one call; the tables are read-only once built.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

from .lexicon import CONTEXTUAL

# Deeper nesting than this is almost certainly generated or broken input; refusing it keeps
# every later stage (analysis, planning, JSON output) clear of Python's recursion limit.
MAX_NESTING = 100
OPENERS = {"LBRACE": "RBRACE", "LPAR": "RPAR", "LSQB": "RSQB"}
CLOSERS = {closer: opener for opener, closer in OPENERS.items()}
# A keyword is never followed straight by `(`, `.` or `=`: a contextual word written that way
# is a name (`message(text: …)`, `within.x`, `env { every = 1 }`). LALR merges the states that
# follow a string or an expression, so after `note "x"` the lexer would otherwise read `as`,
# `every` or `header` as keywords; and a step body accepts every attribute so that a
# misplaced one gets a clear message.
NAME_FOLLOWS = re.compile(r"[(.]|[ \t\r\n]*=(?!=)")

_PASS1, _PASS, _SPLICE, _BUILD = 0, 1, 2, 3


class Token(NamedTuple):
    """A token: its terminal's name, its text, and where it starts and ends."""

    type: str
    value: str
    start_pos: int
    end_pos: int
    line: int
    column: int
    end_line: int
    end_column: int


Meta = tuple[Token, Token] | None
"""What a reduction covers: its first and last token (None for an empty one)."""

_token = tuple.__new__


class UnexpectedCharacter(Exception):
    """No terminal matches the text at `pos`."""

    def __init__(self, pos: int) -> None:
        super().__init__(f"unexpected character at {pos}")
        self.pos = pos


class UnexpectedToken(Exception):
    """The parser cannot take `token` here; `expected` names the terminals it could take.

    `values` and `states` are the parser's stacks when it stopped (for messages that
    depend on what was just read).
    """

    def __init__(self, token: Token, expected: frozenset[str], values: list, states: list[int]
                 ) -> None:
        super().__init__(f"unexpected {token.type}")
        self.token = token
        self.expected = expected
        self.values = values
        self.states = states


class NestingTooDeep(Exception):
    """Brackets nest deeper than MAX_NESTING; `token` is the bracket that goes too far."""

    def __init__(self, token: Token) -> None:
        super().__init__("nesting too deep")
        self.token = token


class TooDeep(Exception):
    """A node of the tree is deeper than the limit given to `Parse`."""


class _Plan(NamedTuple):
    """How one grammar rule reduces: what it pops, pushes and hands to its callback."""

    size: int
    origin: str
    name: str  # the callback: the rule's alias, or its name
    kind: int  # _PASS1 (one symbol, passed through), _PASS, _SPLICE or _BUILD
    child: int  # _PASS: the one child passed through
    include: tuple[tuple[int, bool, int], ...]  # (child, spliced, Nones before it)
    trailing: int  # Nones after the last child
    expand1: bool  # a `?rule`: one child is passed through
    pick: tuple[int, ...] | None  # None: the children are what was popped; () see `include`


class _Lexer(NamedTuple):
    """The scanner of one parser state: its terminals, and its keywords read as NAMEs."""

    pattern: re.Pattern[str]
    keywords: dict[str, str]  # NAME text -> the keyword terminal it is in this state
    allowed: frozenset[str]  # terminals of the pattern, for error messages


class Grammar:
    """The compiled grammar: parse table, reductions and a scanner for each parser state."""

    def __init__(self, lark: Any) -> None:
        self.lark = lark
        frontend = lark.parser.parser.parser  # Lark's LALR parser: its table is what we run
        table = frontend.parse_table
        self.raw_states: dict[int, dict[str, tuple]] = table.states
        self.start_states: dict[str, int] = dict(table.start_states)
        self.end_states: dict[str, int] = dict(table.end_states)
        terminals = {t.name: t for t in lark.terminals}
        self.terminals: dict[str, Any] = terminals
        ignore = frozenset(lark.lexer_conf.ignore)
        self.skip = re.compile("(?:" + "|".join(terminals[name].pattern.to_regexp()
                                                for name in sorted(ignore)) + ")*+")
        # Contextual words that the grammar uses as keywords (their terminals' names).
        self.contextual = frozenset(t.name for t in lark.terminals if t.pattern.type == "str"
                                    and t.pattern.value in CONTEXTUAL)
        self.multiline = frozenset(t.name for t in lark.terminals
                                   if _may_span_lines(t.pattern.to_regexp()))
        plans: dict[int, _Plan] = {}
        lexers: dict[frozenset[str], _Lexer] = {}
        self.actions: dict[int, dict[str, int | _Plan]] = {}
        self.gotos: dict[int, dict[str, int]] = {}
        self.lexers: dict[int, _Lexer] = {}
        for state, entries in table.states.items():
            actions: dict[str, int | _Plan] = {}
            gotos: dict[str, int] = {}
            for symbol, (action, arg) in entries.items():
                if action.name == "Shift":
                    (gotos if symbol not in terminals and symbol != "$END" else actions)[
                        symbol] = arg
                else:
                    plan = plans.get(id(arg))
                    if plan is None:
                        plan = plans[id(arg)] = _plan(arg)
                    actions[symbol] = plan
            self.actions[state] = actions
            self.gotos[state] = gotos
            accepts = frozenset(name for name in entries if name in terminals)
            lexer = lexers.get(accepts)
            if lexer is None:
                lexer = lexers[accepts] = _lexer(
                    [terminals[name] for name in accepts | ignore], ignore, self.skip)
            self.lexers[state] = lexer
        self.root = _lexer(list(terminals.values()), ignore, self.skip)
        # The grammar symbol that leads into each state: what the stack holds there.
        self.accessing: dict[int, str] = {
            target: symbol for entries in table.states.values()
            for symbol, (action, target) in entries.items() if action.name == "Shift"}

    def expected(self, state: int) -> frozenset[str]:
        """The terminals the parser takes in a state (as Lark reports them)."""
        return frozenset(s for s in self.raw_states[state] if s.isupper())



def _may_span_lines(regexp: str) -> bool:
    # The same test as Lark's lexer: could this terminal's text hold a newline?
    return "\n" in regexp or "\\n" in regexp or "\\s" in regexp or "[^" in regexp \
        or ("(?s" in regexp and "." in regexp)


def _plan(rule: Any) -> _Plan:
    """A rule's reduction, as Lark's tree builder (LALR, maybe_placeholders) does it."""
    expansion = rule.expansion
    options = rule.options
    nones_at = [0] * (len(expansion) + 1)
    if options.empty_indices:
        runs = "".join(str(int(b)) for b in options.empty_indices).split("0")
        nones_at = [len(ones) for ones in runs]
    include: list[tuple[int, bool, int]] = []
    pending = 0
    for i, symbol in enumerate(expansion):
        pending += nones_at[i]
        if options.keep_all_tokens or not (symbol.is_term and symbol.filter_out):
            include.append((i, not symbol.is_term and symbol.name.startswith("_"), pending))
            pending = 0
    trailing = pending + nones_at[len(expansion)]
    name = rule.alias or options.template_source or rule.origin.name
    expand1 = bool(options.expand1 and not rule.alias)
    if rule.origin.name.startswith("_"):
        assert not expand1, rule
        kind = _SPLICE
    elif expand1 and len(include) == 1 and not include[0][1] and not include[0][2] \
            and not trailing:
        kind = _PASS1 if len(expansion) == 1 else _PASS
    else:
        kind = _BUILD
    plain = not trailing and not any(spliced or nones for _, spliced, nones in include)
    pick: tuple[int, ...] | None = ()
    if plain and [i for i, _, _ in include] == list(range(len(expansion))):
        pick = None
    elif plain:
        pick = tuple(i for i, _, _ in include)
    return _Plan(len(expansion), rule.origin.name, name, kind, include[0][0] if include else 0,
                 tuple(include), trailing, expand1, pick)


def _children(plan: _Plan, popped: list) -> list:
    """The children of a reduction: spliced `_rule`s, and `None` for missing `[optional]`s."""
    children: list = []
    for index, spliced, nones in plan.include:
        if nones:
            children += [None] * nones
        if not spliced:
            children.append(popped[index])
        elif children:
            children += popped[index]
        else:
            # A `_rule`'s list is nobody else's: extend it in place, or a list of n items,
            # built one reduction at a time, would be copied n times.
            children = popped[index]
    if plan.trailing:
        children += [None] * plan.trailing
    return children


def _lexer(terminals: list, ignore: frozenset[str], skip: re.Pattern[str]) -> _Lexer:
    """The scanner Lark's contextual lexer builds for a set of terminals.

    Terminals are tried in Lark's order (priority, then the longest possible match, then
    the longest pattern, then the name). Keywords that NAME's pattern also matches are left
    out of the pattern: a NAME whose text is one of them is that keyword (Lark's "unless").
    """
    terminals = sorted(terminals, key=lambda t: (-t.priority, -t.pattern.max_width,
                                                 -len(t.pattern.value), t.name))
    keywords: dict[str, str] = {}
    embedded: set[str] = set()
    for regex in (t for t in terminals if t.pattern.type == "re"):
        compiled = re.compile(regex.pattern.to_regexp())
        for word in (t for t in terminals if t.pattern.type == "str"):
            if word.priority != regex.priority:
                continue
            match = compiled.match(word.pattern.value)
            if match is not None and match.group(0) == word.pattern.value:
                assert regex.name == "NAME" and not word.pattern.flags, (regex, word)
                keywords[word.pattern.value] = word.name
                embedded.add(word.name)
    scanned = [t for t in terminals if t.name not in embedded and t.name not in ignore]
    pattern = re.compile(skip.pattern + "(?:" + "|".join(
        f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in scanned) + ")")
    return _Lexer(pattern, keywords, frozenset(t.name for t in scanned))


@lru_cache(maxsize=1)
def grammar() -> Grammar:
    """The language's grammar, compiled once per process (and cached on disk by Lark)."""
    from lark import Lark

    from .. import resources

    return Grammar(Lark(resources.grammar_text(), parser="lalr", lexer="contextual",
                        start=["start", "expr"], maybe_placeholders=True, cache=True))


class Parse:
    """One parse of a text from a start symbol; `run()` returns what the start rule built.

    `reduce` maps each rule's callback name to a function of (Meta, children). `limit`
    bounds the depth of the tree (as Lark's tree would have it): a deeper node raises
    TooDeep. `nested` names the rules whose callbacks parse text of their own (a string's
    interpolations); `nested_depth()` then tells how deep that went.
    """

    def __init__(self, text: str, start: str, reduce: dict[str, Callable[[Meta, list], Any]],
                 limit: int | None = None, nested: frozenset[str] = frozenset(),
                 nested_depth: Callable[[], int] | None = None) -> None:
        self.grammar = grammar()
        self.text = text
        self.start = start
        self.reduce = reduce
        self.limit = limit if limit is not None else float("inf")
        self.nested = nested
        self.nested_depth = nested_depth
        self.open_brackets: list[Token] = []
        self.depth = 0  # how deep the tree is, once parsed (as Lark's tree would be)

    def run(self) -> Any:
        """Parse the whole text (raises UnexpectedCharacter, UnexpectedToken, NestingTooDeep
        or TooDeep)."""
        g = self.grammar
        text = self.text
        length = len(text)
        actions, gotos, lexers = g.actions, g.gotos, g.lexers
        contextual, multiline = g.contextual, g.multiline
        reduce, limit, nested = self.reduce, self.limit, self.nested
        brackets = self.open_brackets
        follows = NAME_FOLLOWS.match
        end_state = g.end_states[self.start]
        # Chains of `?rule`s that pass one child through (an atom on its way up to `expr`
        # takes nine) change nothing but the state on top: where a chain ends depends only on
        # the state below it, the state it starts from and the token ahead.
        chains: dict[tuple[int, int, str], int] = {}
        states = [g.start_states[self.start]]
        values: list = []
        # Per stack entry, what it covers: a token itself, (first token, last token), or None.
        ranges: list = []
        heights: list[int] = []  # per stack entry: its depth in Lark's tree (0 for a token)
        pos = line_start = 0
        line = 1
        token: Token | None = None
        at_end = False
        while True:
            state = states[-1]
            lexer = lexers[state]
            match = lexer.pattern.match(text, pos)
            if match is not None:
                # A token, read with the scanner of the state the parser is in.
                # Every alternative of a scanner is a named group: one of them matched.
                ttype: str = match.lastgroup  # type: ignore[assignment]
                start, end = match.span(ttype)
                if start != pos:
                    newlines = text.count("\n", pos, start)
                    if newlines:
                        line += newlines
                        line_start = text.rindex("\n", pos, start) + 1
                lexeme = text[start:end]
                if ttype == "NAME":
                    ttype = lexer.keywords.get(lexeme, "NAME")
                column = start - line_start + 1
                if ttype in multiline and "\n" in lexeme:
                    end_line = line + lexeme.count("\n")
                    line_start = start + lexeme.rindex("\n") + 1
                    token = _token(Token, (ttype, lexeme, start, end, line, column, end_line,
                                           end - line_start + 1))
                    line = end_line
                else:
                    token = _token(Token, (ttype, lexeme, start, end, line, column, line,
                                           column + end - start))
                pos = end
                if ttype in OPENERS:
                    brackets.append(token)
                    if len(brackets) > MAX_NESTING:
                        raise NestingTooDeep(token)
                elif ttype in CLOSERS:
                    if brackets and OPENERS[brackets[-1].type] == ttype:
                        brackets.pop()
                if ttype in contextual and follows(text, end):
                    ttype = "NAME"
                    token = token._replace(type="NAME")
            else:
                after = g.skip.match(text, pos).end()  # type: ignore[union-attr]
                if after < length:
                    self._lex_error(after, lexer, values, states)
                at_end = True
                ttype = "$END"
                token = token._replace(type="$END", value="") if token is not None else \
                    _token(Token, ("$END", "", 0, 0, 1, 1, 1, 1))
            # Feed the token: reduce while the table says so, then shift it.
            while True:
                action = actions[state].get(ttype)
                if action is None or (at_end and action.__class__ is int):
                    raise UnexpectedToken(token, g.expected(state), values, states)
                if action.__class__ is int:
                    states.append(action)
                    values.append(token)
                    ranges.append(token)
                    heights.append(0)
                    break
                plan: _Plan = action  # type: ignore[assignment]
                if plan.kind == _PASS1:
                    below = states[-2]
                    key = (below, state, ttype)
                    target = chains.get(key)
                    if target is None:
                        target = chains[key] = self._chain(below, state, ttype, end_state)
                    states[-1] = state = target
                    if at_end and state == end_state:
                        self.depth = heights[-1]
                        return values[-1]
                    continue
                size = plan.size
                if size:
                    popped = values[-size:]
                    covered = ranges[-size:]
                    height = max(heights[-size:])
                    del values[-size:], ranges[-size:], heights[-size:], states[-size:]
                    first, last = covered[0], covered[-1]
                    if first is None or last is None:
                        inside = [r for r in covered if r is not None]
                        first, last = (inside[0], inside[-1]) if inside else (None, None)
                    if first is None:
                        meta = None
                    else:
                        meta = (first if first.__class__ is Token else first[0],
                                last if last.__class__ is Token else last[1])
                else:
                    popped, meta, height = [], None, 0
                kind = plan.kind
                if kind == _PASS:
                    value = popped[plan.child]
                    if value.__class__ is Token:
                        meta = value  # a token passed through keeps its own place
                else:
                    if plan.pick is None:
                        children = popped
                    elif plan.pick:
                        children = [popped[i] for i in plan.pick]
                    else:
                        children = _children(plan, popped)
                    if kind == _SPLICE:
                        value = children
                    elif plan.expand1 and len(children) == 1:
                        value = children[0]
                        if value is None:
                            meta = None
                        elif value.__class__ is Token:
                            meta = value
                    else:
                        value = reduce[plan.name](meta, children)
                        height += 1
                        if plan.name in nested and self.nested_depth is not None:
                            height = max(height, self.nested_depth() + 1)
                        if height > limit:
                            raise TooDeep()
                state = gotos[states[-1]][plan.origin]
                states.append(state)
                values.append(value)
                ranges.append(meta)
                heights.append(height)
                if at_end and state == end_state:
                    self.depth = height
                    return value

    def _chain(self, below: int, state: int, ttype: str, end_state: int) -> int:
        """Where a chain of one-child `?rule` reductions from `state` ends."""
        actions, gotos = self.grammar.actions, self.grammar.gotos
        while True:
            plan = actions[state].get(ttype)
            if plan is None or plan.__class__ is int or plan.kind != _PASS1:  # type: ignore
                return state
            state = gotos[below][plan.origin]  # type: ignore[union-attr]
            if ttype == "$END" and state == end_state:
                return state

    def _lex_error(self, pos: int, lexer: _Lexer, values: list, states: list[int]) -> None:
        """No terminal of this state matches at `pos`: report it as Lark's lexer does.

        Lark then tries every terminal of the grammar: if one matches, the error is that
        token (with this state's terminals as the expected ones), else the character.
        """
        match = self.grammar.root.pattern.match(self.text, pos)
        if match is None or match.lastgroup is None:
            raise UnexpectedCharacter(pos)
        ttype = match.lastgroup
        start, end = match.span(ttype)
        value = self.text[start:end]
        if ttype == "NAME":
            ttype = self.grammar.root.keywords.get(value, "NAME")
        line = self.text.count("\n", 0, start) + 1
        column = start - (self.text.rfind("\n", 0, start) + 1) + 1
        end_line = line + value.count("\n")
        end_column = end - (self.text.rfind("\n", 0, end) + 1) + 1 if end_line > line else \
            column + end - start
        token = _token(Token, (ttype, value, start, end, line, column, end_line, end_column))
        if ttype in OPENERS:
            self.open_brackets.append(token)
            if len(self.open_brackets) > MAX_NESTING:
                raise NestingTooDeep(token)
        elif ttype in CLOSERS and self.open_brackets \
                and OPENERS[self.open_brackets[-1].type] == ttype:
            self.open_brackets.pop()
        raise UnexpectedToken(token, lexer.allowed or frozenset({"<END-OF-FILE>"}), values,
                              states)
