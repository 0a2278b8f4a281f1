"""The grammar as LALR tables and scanners, and the loop that runs them over a text.

Lark compiles `grammars/runbook.lark` (LALR, contextual lexer) into a parse table, terminals
and rules; `tables.py` keeps that data beside the grammar. This module runs it with a loop of
its own, because Lark's loop builds a parse tree first, with positions on every node, which
the transformer then walked again: for a large file that was most of `runbook check`. Here
each reduction hands its children straight to a callback (`reduce`), with the first and last
token it covers, so the AST is built as the text is read.

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

All state of a parse is in its `Parse`; the grammar is shared and only read (a state's
scanner is compiled the first time a parse needs it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from ..hints import TYPE_CHECKING, NamedTuple
from .lexicon import CONTEXTUAL
from .tables import PASS, PASS1, SPLICE

if TYPE_CHECKING:
    from typing import Any

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

# What the lexer does more with a token of a terminal than make it (see Grammar.specials).
_CONTEXTUAL, _MULTILINE, _OPENER, _CLOSER = 1, 2, 3, 4


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


# The parser's own records are plain classes with slots: a named tuple costs each class an
# exec of generated code at import, for records nobody unpacks.

class _Plan:
    """How one grammar rule reduces: what it pops, pushes and hands to its callback."""

    __slots__ = ("size", "origin", "name", "kind", "child", "include", "trailing", "expand1",
                 "pick")
    size: int
    origin: str
    name: str  # the callback: the rule's alias, or its name
    kind: int  # PASS1 (one symbol, passed through), PASS, SPLICE or BUILD
    child: int  # PASS: the one child passed through
    include: tuple[tuple[int, bool, int], ...]  # (child, spliced, Nones before it)
    trailing: int  # Nones after the last child
    expand1: bool  # a `?rule`: one child is passed through
    pick: tuple[int, ...] | None  # None: the children are what was popped; () see `include`

    def __init__(self, size: int, origin: str, name: str, kind: int, child: int,
                 include: tuple[tuple[int, bool, int], ...], trailing: int, expand1: bool,
                 pick: tuple[int, ...] | None) -> None:
        self.size, self.origin, self.name, self.kind, self.child = size, origin, name, kind, \
            child
        self.include, self.trailing, self.expand1, self.pick = include, trailing, expand1, pick


class _Lexer:
    """The scanner of one parser state: its terminals, and its keywords read as NAMEs."""

    __slots__ = ("pattern", "keywords", "allowed")
    pattern: re.Pattern[str]
    keywords: dict[str, str]  # NAME text -> the keyword terminal it is in this state
    allowed: frozenset[str]  # terminals of the pattern, for error messages

    def __init__(self, pattern: re.Pattern[str], keywords: dict[str, str],
                 allowed: frozenset[str]) -> None:
        self.pattern, self.keywords, self.allowed = pattern, keywords, allowed


class _Terminal:
    """A terminal of the grammar, as Lark describes it."""

    __slots__ = ("name", "type", "regexp", "value", "priority", "max_width", "flags")
    name: str
    type: str  # "str" for a literal, "re" for a pattern
    regexp: str
    value: str  # the literal, or the pattern as written
    priority: int
    max_width: int
    flags: tuple[str, ...]

    def __init__(self, name: str, type: str, regexp: str, value: str, priority: int,
                 max_width: int, flags: tuple[str, ...]) -> None:
        self.name, self.type, self.regexp, self.value = name, type, regexp, value
        self.priority, self.max_width, self.flags = priority, max_width, flags


class Grammar:
    """The compiled grammar: parse table, reductions, and a scanner for each parser state.

    Built from the tables of `tables.py`. A state's scanner is compiled the first time the
    parser is in that state (most files visit a fraction of them), as Lark does.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.start_states: dict[str, int] = data["start"]
        self.end_states: dict[str, int] = data["end"]
        self.terminals = {name: _Terminal(name, kind, regexp, value, priority, width,
                                          tuple(flags))
                          for name, (kind, regexp, value, priority, width, flags)
                          in data["terminals"].items()}
        self.ignore = frozenset(data["ignore"])
        self.skip = re.compile("(?:" + "|".join(self.terminals[name].regexp
                                                for name in sorted(self.ignore)) + ")*+")
        # Contextual words that the grammar uses as keywords (their terminals' names).
        self.contextual = frozenset(t.name for t in self.terminals.values()
                                    if t.type == "str" and t.value in CONTEXTUAL)
        multiline = frozenset(t.name for t in self.terminals.values()
                              if _may_span_lines(t.regexp))
        self.specials: dict[str, int] = {
            **{name: _MULTILINE for name in multiline},
            **{name: _OPENER for name in OPENERS}, **{name: _CLOSER for name in CLOSERS},
            **{name: _CONTEXTUAL for name in self.contextual}}
        plans = [_Plan(size, origin, name, kind, child,
                       tuple((i, spliced, nones) for i, spliced, nones in include), trailing,
                       expand1, tuple(pick) if pick is not None else None)
                 for size, origin, name, kind, child, include, trailing, expand1, pick
                 in data["plans"]]
        # A state is decoded, and its actions made, the first time the parser is in it, as
        # its scanner is compiled (a small file visits a fraction of the states).
        states = _States(data["states"])
        self.actions = _Actions(states, plans)
        self.gotos = _Gotos(states)
        self.lexers = _Lexers(self)
        # Per state, what the loop needs of its scanner: (the pattern's match, keywords);
        # filled in as states are first visited (a list is quicker to index than a dict).
        self.scanners: list[tuple[Callable[..., re.Match[str] | None], dict[str, str]] | None] \
            = [None] * len(states.texts)
        self._root: _Lexer | None = None
        self._accessing: dict[int, str] | None = None

    @property
    def accessing(self) -> dict[int, str]:
        """The symbol that leads into each state (for messages)."""
        if self._accessing is None:
            accessing = {}
            for state in range(len(self.actions.raw.texts)):
                actions, gotos = self.actions.raw[state]
                for symbol, target in [*actions.items(), *gotos.items()]:
                    if target >= 0:
                        accessing[target] = symbol
            self._accessing = accessing  # whole, before another thread can see it
        return self._accessing

    def scanner(self, state: int) -> tuple[Callable[..., re.Match[str] | None], dict[str, str]]:
        """The match function and keywords of a state's scanner (compiled on first use)."""
        lexer = self.lexers[state]
        found = self.scanners[state] = (lexer.pattern.match, lexer.keywords)
        return found

    def expected(self, state: int) -> frozenset[str]:
        """The terminals the parser takes in a state (as Lark reports them)."""
        return frozenset(self.actions[state])

    def literal(self, terminal: str) -> str | None:
        """The text of a literal terminal (`{`, `step`), or None."""
        known = self.terminals.get(terminal)
        return known.value if known is not None and known.type == "str" else None

    @property
    def root(self) -> _Lexer:
        """The scanner of every terminal (for errors: what the text holds, if not what the
        state takes)."""
        if self._root is None:
            self._root = _lexer(list(self.terminals.values()), self.ignore, self.skip)
        return self._root


class _States(dict[int, tuple[dict[str, int], dict[str, int]]]):
    """Each state's (actions, gotos) as the tables file holds them, decoded on first use."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__()
        self.texts = texts

    def __missing__(self, state: int) -> tuple[dict[str, int], dict[str, int]]:
        from .tables import decode_state

        decoded = self[state] = decode_state(self.texts[state])
        return decoded


class _Gotos(dict[int, dict[str, int]]):
    """The state after a reduction, by the state below it and the rule's symbol."""

    def __init__(self, states: _States) -> None:
        super().__init__()
        self.states = states

    def __missing__(self, state: int) -> dict[str, int]:
        gotos = self[state] = self.states[state][1]
        return gotos


class _Actions(dict[int, dict[str, "int | _Plan"]]):
    """The parse table's actions by state: a terminal's shift (the next state) or
    reduction (its plan); each state's made on first use."""

    def __init__(self, raw: _States, plans: list[_Plan]) -> None:
        super().__init__()
        self.raw = raw
        self.plans = plans

    def __missing__(self, state: int) -> dict[str, int | _Plan]:
        plans = self.plans
        made = self[state] = {symbol: target if target >= 0 else plans[-1 - target]
                              for symbol, target in self.raw[state][0].items()}
        return made


class _Lexers(dict[int, _Lexer]):
    """Scanners by parser state, each compiled on first use (one per set of terminals)."""

    def __init__(self, grammar: Grammar) -> None:
        super().__init__()
        self.grammar = grammar
        self.by_terminals: dict[frozenset[str], _Lexer] = {}

    def __missing__(self, state: int) -> _Lexer:
        g = self.grammar
        accepts = frozenset(name for name in g.actions[state] if name in g.terminals)
        lexer = self.by_terminals.get(accepts)
        if lexer is None:
            lexer = self.by_terminals[accepts] = _lexer(
                [g.terminals[name] for name in accepts | g.ignore], g.ignore, g.skip)
        self[state] = lexer
        return lexer


def _may_span_lines(regexp: str) -> bool:
    # The same test as Lark's lexer: could this terminal's text hold a newline?
    return "\n" in regexp or "\\n" in regexp or "\\s" in regexp or "[^" in regexp \
        or ("(?s" in regexp and "." in regexp)


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


def _lexer(terminals: list[_Terminal], ignore: frozenset[str], skip: re.Pattern[str]
           ) -> _Lexer:
    """The scanner Lark's contextual lexer builds for a set of terminals.

    Terminals are tried in Lark's order (priority, then the longest possible match, then
    the longest pattern, then the name). Keywords that NAME's pattern also matches are left
    out of the pattern: a NAME whose text is one of them is that keyword (Lark's "unless").
    """
    terminals = sorted(terminals, key=lambda t: (-t.priority, -t.max_width, -len(t.value),
                                                 t.name))
    keywords: dict[str, str] = {}
    embedded: set[str] = set()
    for regex in (t for t in terminals if t.type == "re"):
        compiled = re.compile(regex.regexp)
        for word in (t for t in terminals if t.type == "str"):
            if word.priority != regex.priority:
                continue
            match = compiled.match(word.value)
            if match is not None and match.group(0) == word.value:
                assert regex.name == "NAME" and not word.flags, (regex, word)
                keywords[word.value] = word.name
                embedded.add(word.name)
    scanned = [t for t in terminals if t.name not in embedded and t.name not in ignore]
    pattern = re.compile(skip.pattern + "(?:" + "|".join(
        f"(?P<{t.name}>{t.regexp})" for t in scanned) + ")")
    return _Lexer(pattern, keywords, frozenset(t.name for t in scanned))


@lru_cache(maxsize=1)
def grammar() -> Grammar:
    """The language's grammar, loaded once per process (see `tables.py`)."""
    from .tables import load

    return Grammar(load())


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
        actions, gotos, scanners = g.actions, g.gotos, g.scanners
        specials = g.specials
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
            scanner = scanners[state]
            if scanner is None:
                scanner = g.scanner(state)
            match = scanner[0](text, pos)
            if match is not None:
                # A token, read with the scanner of the state the parser is in.
                # Every alternative of a scanner is a named group: one of them matched.
                ttype: str = match.lastgroup  # type: ignore[assignment]
                start, end = match.span(ttype)
                # Most tokens follow one space on the same line: no line break to count.
                if start != pos and (start - pos != 1 or text[pos] != " "):
                    newlines = text.count("\n", pos, start)
                    if newlines:
                        line += newlines
                        line_start = text.rindex("\n", pos, start) + 1
                lexeme = text[start:end]
                if ttype == "NAME":
                    ttype = scanner[1].get(lexeme, "NAME")
                column = start - line_start + 1
                special = specials.get(ttype)
                if special is None:
                    token = _token(Token, (ttype, lexeme, start, end, line, column, line,
                                           column + end - start))
                elif special == _CONTEXTUAL:
                    if follows(text, end):
                        ttype = "NAME"
                    token = _token(Token, (ttype, lexeme, start, end, line, column, line,
                                           column + end - start))
                elif special == _MULTILINE and "\n" in lexeme:
                    end_line = line + lexeme.count("\n")
                    line_start = start + lexeme.rindex("\n") + 1
                    token = _token(Token, (ttype, lexeme, start, end, line, column, end_line,
                                           end - line_start + 1))
                    line = end_line
                else:
                    token = _token(Token, (ttype, lexeme, start, end, line, column, line,
                                           column + end - start))
                    if special == _OPENER:
                        brackets.append(token)
                        if len(brackets) > MAX_NESTING:
                            raise NestingTooDeep(token)
                    elif special == _CLOSER:
                        if brackets and OPENERS[brackets[-1].type] == ttype:
                            brackets.pop()
                pos = end
            else:
                after = g.skip.match(text, pos).end()  # type: ignore[union-attr]
                if after < length:
                    self._lex_error(after, g.lexers[state], values, states)
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
                if plan.kind == PASS1:
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
                meta: Any  # what the new entry covers (see `ranges`); a Meta for callbacks
                if size:
                    popped = values[-size:]
                    first, last = ranges[-size], ranges[-1]
                    if first is None or last is None:
                        inside = [r for r in ranges[-size:] if r is not None]
                        first, last = (inside[0], inside[-1]) if inside else (None, None)
                    if size == 1:
                        height = heights[-1]
                    else:
                        height = max(heights[-size:])
                        # The first entry popped stays, to be overwritten by the new one.
                        cut = 1 - size
                        del values[cut:], ranges[cut:], heights[cut:], states[cut:]
                    if first is None:
                        meta = None
                    else:
                        meta = (first if first.__class__ is Token else first[0],
                                last if last.__class__ is Token else last[1])
                else:
                    popped, meta, height = [], None, 0
                    # An empty reduction adds an entry: its state is overwritten below.
                    states.append(state)
                    values.append(None)
                    ranges.append(None)
                    heights.append(0)
                kind = plan.kind
                if kind == PASS:
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
                    if kind == SPLICE:
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
                states[-1] = state = gotos[states[-2]][plan.origin]
                values[-1] = value
                ranges[-1] = meta
                heights[-1] = height
                if at_end and state == end_state:
                    self.depth = height
                    return value

    def _chain(self, below: int, state: int, ttype: str, end_state: int) -> int:
        """Where a chain of one-child `?rule` reductions from `state` ends."""
        actions, gotos = self.grammar.actions, self.grammar.gotos
        while True:
            plan = actions[state].get(ttype)
            if plan is None or plan.__class__ is int or plan.kind != PASS1:  # type: ignore
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
