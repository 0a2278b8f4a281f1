"""The AST's records: built by keyword only, immutable, equal and hashed by value, and
written to and read from JSON documents without loss.

The properties run on generated records of every node class, their fields filled with
values of any shape (the records validate nothing, so the shape does not matter), and on
the AST of every file in the repository.
"""

from __future__ import annotations

import copy
import inspect
import json
import pickle
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook_lang.dataclass import FrozenInstanceError
from runbook_lang.syntax import nodes as n
from runbook_lang.syntax.frozen import Frozen, items
from runbook_lang.syntax.parser import ParseFailure, parse_source
from runbook_lang.syntax.source import Source, Span

ROOT = Path(__file__).resolve().parents[1]
CLASSES = n.node_classes()

spans = st.builds(Span, line=st.integers(1, 9), column=st.integers(1, 9),
                  end_line=st.integers(1, 9), end_column=st.integers(1, 9),
                  start=st.integers(0, 99), end=st.integers(0, 99))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2),
                    st.text(max_size=4), spans)


def _record(cls: type[n.Node], children) -> st.SearchStrategy[n.Node]:
    """A `cls` with every field filled: `kind` as the class writes it, anything elsewhere."""
    values = {name: children for name in cls.fields if name not in ("span", "kind")}
    return st.builds(cls.make, span=spans, **values)


def _records(children) -> st.SearchStrategy[n.Node]:
    return st.one_of([_record(cls, children) for cls in CLASSES])


# Fields hold scalars, spans, records and lists of records, nested a few levels deep.
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      _records(inner)), max_leaves=12)
records = _records(values)


def _files() -> list[Path]:
    # Files only: a run leaves a `.runbook/` folder (its store) where it was started.
    return sorted(p for p in ROOT.rglob("*.runbook")
                  if p.is_file() and ".venv" not in p.parts and ".runbook" not in p.parts)


def _parsed(path: Path) -> n.Runbook | None:
    try:
        text = Source.from_path(path).text
        return parse_source(Source(path.name, text))[0]
    except (ParseFailure, UnicodeDecodeError):
        return None


# ---------------------------------------------------------------------- documents


@given(records)
def test_documents_read_back_into_equal_records(record: n.Node) -> None:
    document = n.to_data(record)
    assert json.loads(json.dumps(document)) == document
    again = n.from_data(document)
    assert again == record and again is not record
    assert type(again) is type(record)
    assert n.to_data(again) == document


@given(records)
def test_a_document_leads_with_the_kind_then_the_span_then_the_fields(record: n.Node) -> None:
    document = n.to_data(record)
    own = [name for name in type(record).fields if name not in ("span", "kind")]
    assert list(document) == ["kind", "span", *own]
    assert list(document["span"]) == ["line", "column", "end_line", "end_column", "start",
                                      "end"]


def test_every_file_of_the_repository_reads_back_from_its_document() -> None:
    parsed = [ast for ast in map(_parsed, _files()) if ast is not None]
    assert len(parsed) > 100
    for ast in parsed:
        document = n.to_data(ast)
        assert n.from_data(json.loads(json.dumps(document))) == ast, ast.path


def test_a_document_of_unknown_kind_or_field_is_refused() -> None:
    span = {"line": 1, "column": 1, "end_line": 1, "end_column": 2, "start": 0, "end": 1}
    with pytest.raises(ValueError, match="no AST node has kind 'nope'"):
        n.from_data({"kind": "nope", "span": span})
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        n.from_data({"kind": "name", "span": span, "name": "x", "colour": "red"})
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'name'"):
        n.from_data({"kind": "name", "span": span})


def test_each_kind_names_one_class() -> None:
    kinds = n.node_kinds()
    assert kinds["step"] is kinds["check_step"] is n.Step
    assert kinds["file"] is n.Runbook and kinds["literal"] is n.Literal_
    assert set(kinds.values()) == set(CLASSES)
    assert len(kinds) == len(CLASSES) + 1


# ---------------------------------------------------------------------- construction


@given(records)
def test_the_constructor_and_make_build_the_same_record(record: n.Node) -> None:
    values = dict(items(record))
    built = type(record)(**values)
    assert built == record and repr(built) == repr(record)
    assert list(built.__dict__) == list(record.__dict__)


@pytest.mark.parametrize("build", ["constructor", "make"])
def test_a_missing_unknown_or_positional_field_is_a_type_error(build: str) -> None:
    span = Span.make(line=1, column=1, end_line=1, end_column=2, start=0, end=1)
    new = n.Name if build == "constructor" else n.Name.make
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'name'"):
        new(span=span)
    with pytest.raises(TypeError, match="unexpected keyword argument 'nmae'"):
        new(span=span, nmae="x")
    with pytest.raises(TypeError, match="positional"):
        new(span, "x")


def test_fields_are_the_base_class_s_then_each_class_s_own_in_order() -> None:
    assert Span.fields == ("line", "column", "end_line", "end_column", "start", "end")
    assert n.Ident.fields == ("span", "kind", "name")
    assert n.Watch.fields == ("span", "kind", "title", "duration", "every", "tolerate",
                              "probe", "expects")
    assert n.Step.fields[:4] == ("span", "kind", "name", "title")
    assert n.Step.fields[-4:] == ("probe", "expects", "within", "every")
    assert all(cls.fields[:2] == ("span", "kind") for cls in CLASSES)


def test_defaults_fill_what_is_left_out_and_no_two_records_share_a_list() -> None:
    span = Span.make(line=1, column=1, end_line=1, end_column=2, start=0, end=1)
    name = n.Ident.make(span=span, name="get")
    url = n.String.make(span=span, parts=[])
    first = n.Http.make(span=span, method=name, url=url)
    second = n.Http(span=span, method=name, url=url)
    assert (first.kind, first.headers, first.body, first.into) == ("http", [], None, None)
    assert first == second and first.headers is not second.headers
    first.headers.append("changed")  # nothing stops a list from changing; its owner alone sees it
    assert n.Http.make(span=span, method=name, url=url).headers == []
    assert second.headers == [] and n.Http.defaults["headers"] == []
    # The class holds no field as an attribute of its own: only instances do.
    assert not hasattr(n.Http, "headers") and not hasattr(n.Ident, "kind")


def test_a_mutable_default_other_than_a_list_is_refused() -> None:
    with pytest.raises(TypeError, match="shared by every instance"):
        class Bad(Frozen):
            table: dict = {}  # the mistake under test


# ---------------------------------------------------------------------- value semantics


@given(records, st.data())
def test_no_field_can_be_assigned_or_deleted(record: n.Node, data) -> None:
    name = data.draw(st.sampled_from(type(record).fields))
    before = n.to_data(record)
    with pytest.raises(FrozenInstanceError):
        setattr(record, name, None)
    with pytest.raises(FrozenInstanceError):
        delattr(record, name)
    with pytest.raises(FrozenInstanceError):
        record.invented = 1
    assert n.to_data(record) == before


@given(records, records)
def test_records_are_equal_when_class_and_fields_are(first: n.Node, second: n.Node) -> None:
    same = type(first) is type(second) and n.to_data(first) == n.to_data(second)
    assert (first == second) is same
    assert (first != second) is not same
    copied = n.from_data(n.to_data(first))
    assert first == copied and not first != copied


@given(st.lists(spans, min_size=2, max_size=6))
def test_equal_spans_hash_alike_and_serve_as_keys(found: list[Span]) -> None:
    table = {span: index for index, span in enumerate(found)}
    for span in found:
        twin = Span(**dict(items(span)))
        assert hash(twin) == hash(span) and table[twin] == table[span]
    assert len(table) == len({tuple(n.to_data(s).values()) for s in found})


@given(records)
def test_a_record_holding_a_list_is_unhashable(record: n.Node) -> None:
    try:
        value = hash(record)
    except TypeError as error:
        assert "unhashable type: 'list'" in str(error)
    else:
        assert value == hash(n.from_data(n.to_data(record)))


def test_a_node_of_another_class_with_the_same_fields_is_not_equal() -> None:
    span = Span.make(line=1, column=1, end_line=1, end_column=2, start=0, end=1)
    confirm = n.Confirm.make(span=span, question=n.String.make(span=span, parts=[]))
    note = n.Note.make(span=span, text=n.String.make(span=span, parts=[]))
    assert confirm != note and confirm != n.to_data(confirm)
    assert n.Name.make(span=span, name="x") != n.Ident.make(span=span, name="x", kind="name")


@given(records)
def test_copies_and_pickles_are_equal_records(record: n.Node) -> None:
    assert copy.copy(record) == record
    assert copy.deepcopy(record) == record
    assert pickle.loads(pickle.dumps(record)) == record


def test_the_repr_names_the_class_and_every_field() -> None:
    span = Span.make(line=2, column=3, end_line=2, end_column=4, start=9, end=10)
    assert repr(n.Name.make(span=span, name="x")) == (
        "Name(span=Span(line=2, column=3, end_line=2, end_column=4, start=9, end=10), "
        "kind='name', name='x')")


def test_the_deepest_legal_file_is_written_and_read_with_room_to_spare() -> None:
    """97 nested `if`s around a 20-deep list, as deep as the parser accepts: the document
    is written and read back within half of Python's default recursion limit."""
    text = ('step s "S" {\n' + "if true {\n" * 97 + 'note "{{ ' + "[" * 20 + "]" * 20
            + ' }}"\n' + "}\n" * 98)
    ast = parse_source(Source("deep.runbook", text))[0]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 500)
    try:
        document = n.to_data(ast)
        again = n.from_data(document)
    finally:
        sys.setrecursionlimit(limit)
    assert again == ast
    with pytest.raises(ParseFailure):  # one level more is refused: this is the deepest
        parse_source(Source("deep.runbook", text.replace("{\n", "{\nif true {\n", 1)
                            .replace("}\n", "}\n}\n", 1)))
