"""Reductions kept as a parse tree, and the AST built from that tree bottom-up.

The parser builds the AST as it reduces. Two results are defined by a parse tree walked
bottom-up, level by level, as Lark's `Tree.iter_subtrees` walks it: which node is reported
when the tree is too deep, and the order of several diagnostics. For the few files where
either matters, the parser keeps each reduction as a `Tree` (`tree_callbacks`) and `build`
makes the AST from it, without recursion, so a deep file cannot exhaust the stack.
"""

from __future__ import annotations

from collections.abc import Callable

from .lalr import Meta
from .transform import MAX_DEPTH, AstBuilder, rule_callbacks


class Tree:
    """A reduction kept for later: its rule's callback name, what it covers, its children."""

    __slots__ = ("data", "meta", "children")

    def __init__(self, data: str, meta: Meta, children: list) -> None:
        self.data, self.meta, self.children = data, meta, children


def tree_callbacks() -> dict[str, Callable[[Meta, list], Tree]]:
    """Reduction callbacks that keep each reduction of the grammar as a `Tree`."""
    return {name: _keep(name) for name in rule_callbacks()}


def _keep(name: str) -> Callable[[Meta, list], Tree]:
    def keep(meta: Meta, children: list) -> Tree:
        return Tree(name, meta, children)
    return keep


def build(builder: AstBuilder, tree: Tree):
    """The AST of a tree, built bottom-up by `builder`'s callbacks.

    It also measures the tree's depth: `1 + 1 + …` nests one level per operator without a
    single bracket, and later stages (analysis, JSON output) recurse over the AST. The first
    node deeper than MAX_DEPTH is kept in `builder.too_deep` for the parser to report.
    """
    rules = rule_callbacks()
    results: dict[int, object] = {}
    depths: dict[int, int] = {}
    for sub in _bottom_up(tree):
        children = []
        depth = 0
        for child in sub.children:
            if child.__class__ is Tree:
                key = id(child)
                children.append(results.pop(key))
                below = depths.pop(key)
                if below > depth:
                    depth = below
            else:
                children.append(child)
        results[id(sub)] = rules[sub.data](builder, sub.meta, children)
        if builder.inner_depth:
            # A string's interpolations were parsed apart; their depth counts here.
            depth = max(depth, builder.inner_depth)
            builder.inner_depth = 0
        depth += 1
        if depth > MAX_DEPTH and builder.too_deep is None:
            builder.too_deep = builder.meta_span(sub.meta)
        depths[id(sub)] = depth
    builder.last_depth = depths[id(tree)]
    return results[id(tree)]


def _bottom_up(tree: Tree) -> list[Tree]:
    """The subtrees, deepest level first and left to right within a level.

    This is the order of Lark's `Tree.iter_subtrees`, which decides which too-deep node is
    reported and in which order the diagnostics of a file come out.
    """
    order = [tree]
    for node in order:  # breadth first, right to left
        order.extend(child for child in reversed(node.children) if child.__class__ is Tree)
    order.reverse()
    return order
