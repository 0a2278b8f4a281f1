"""Canonical statements (the bytes that get signed): deterministic, unambiguous, read back.

Generated cases: every valid statement survives a round trip; two different statements
never share bytes, whatever their reasons hold (quotes, braces, newlines, another
statement's text); any other spelling of a statement is refused; arbitrary bytes are either
refused or read as exactly the statement they encode.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lang.trust import ApprovalStatement, HeadStatement, Signed, StatementError
from runbook_lang.trust.statements import format_time, parse_time

SHA = "0123456789abcdef" * 4

# Text a person could type, surrogates excluded (they are not text); names without control
# characters, reasons with anything (newlines, quotes, JSON of other statements).
names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
reasons = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200) | st.sampled_from([
    '","gate":"approve_prod', '"}\n{"decision":"reject', "\\\"", "line one\nline two",
    '{"format":"runbook-approval"}', "\u2028\u0000\x7f"])
digests = st.text("0123456789abcdef", min_size=64, max_size=64)
times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31),
                     timezones=st.just(UTC)).map(format_time)

approvals = st.builds(ApprovalStatement, run_id=names, runbook_sha256=digests, gate=names,
                      decision=st.sampled_from(["approve", "reject"]), reason=reasons,
                      time=times, approver=names)
heads = st.builds(HeadStatement, run_id=names, seq=st.integers(0, 2**63), hash=digests,
                  time=times, signer=names)
statements = approvals | heads


def read(data: bytes):
    """Read bytes as whichever statement they claim to be."""
    kind = HeadStatement if b'"format":"runbook-head"' in data else ApprovalStatement
    return kind.from_bytes(data)


@given(statements)
def test_a_statement_reads_back_as_itself(statement):
    data = statement.to_bytes()
    assert type(statement).from_bytes(data) == statement
    assert statement.to_bytes() == data  # deterministic
    assert b"\n" not in data and b"\r" not in data  # one line, whatever the reason holds


@given(statements, statements)
def test_different_statements_never_share_bytes(a, b):
    if a != b:
        assert a.to_bytes() != b.to_bytes()


@given(approvals, reasons)
def test_a_reason_cannot_change_another_field(statement, reason):
    forged = ApprovalStatement(statement.run_id, statement.runbook_sha256, statement.gate,
                               statement.decision, reason, statement.time, statement.approver)
    back = ApprovalStatement.from_bytes(forged.to_bytes())
    assert (back.run_id, back.runbook_sha256, back.gate, back.decision, back.time,
            back.approver) == (statement.run_id, statement.runbook_sha256, statement.gate,
                               statement.decision, statement.time, statement.approver)
    assert back.reason == reason


def respellings(data: bytes) -> list[bytes]:
    """Other JSON spellings of the same fields."""
    fields = json.loads(data)
    return [
        json.dumps(fields, sort_keys=True).encode(),  # spaces after separators
        json.dumps(fields, sort_keys=True, separators=(",", ":")).encode(),  # \u escapes
        json.dumps(dict(reversed(list(fields.items()))), separators=(",", ":"),
                   ensure_ascii=False).encode(),  # key order
        data + b"\n",
        b" " + data,
        data[:-1] + b',"format":' + json.dumps(fields["format"]).encode() + b"}",  # repeated
        data.replace(b'"version":1', b'"version":1.0'),
    ]


@given(statements)
def test_any_other_spelling_is_refused(statement):
    data = statement.to_bytes()
    for other in respellings(data):
        if other != data:
            with pytest.raises(StatementError):
                type(statement).from_bytes(other)


@settings(max_examples=300)
@given(st.binary(max_size=400) | statements.map(lambda s: s.to_bytes()).flatmap(
    lambda data: st.integers(0, len(data) - 1).flatmap(
        lambda i: st.binary(min_size=1, max_size=3).map(lambda b: data[:i] + b + data[i + 1:]))))
def test_arbitrary_bytes_are_refused_or_read_exactly(data):
    try:
        statement = read(data)
    except StatementError:
        return
    assert statement.to_bytes() == data


def test_an_unknown_field_is_named():
    data = HeadStatement("r", 1, SHA, "2026-11-29T16:20:05.123Z", "alice").to_bytes()
    with pytest.raises(StatementError, match="unexpected: host"):
        HeadStatement.from_bytes(data[:-1] + b',"host":"x"}')


def test_the_bytes_of_an_approval_are_fixed():
    """Signatures made today must verify tomorrow: this layout is the format, version 1."""
    statement = ApprovalStatement("20261129T161342Z-3f9a1c", SHA, "approve_prod", "approve",
                                  'ok "as discussed"\nticket: none', "2026-11-29T16:20:05.123Z",
                                  "alice")
    assert statement.to_bytes() == (
        b'{"approver":"alice","decision":"approve","format":"runbook-approval",'
        b'"gate":"approve_prod","reason":"ok \\"as discussed\\"\\nticket: none",'
        b'"run_id":"20261129T161342Z-3f9a1c","runbook_sha256":"' + SHA.encode() + b'",'
        b'"time":"2026-11-29T16:20:05.123Z","version":1}')


def test_the_bytes_of_a_head_seal_are_fixed():
    statement = HeadStatement("20261129T161342Z-3f9a1c", 41, SHA, "2026-11-29T16:31:40.007Z",
                              "alice")
    assert statement.to_bytes() == (
        b'{"format":"runbook-head","hash":"' + SHA.encode() + b'",'
        b'"run_id":"20261129T161342Z-3f9a1c","seq":41,"signer":"alice",'
        b'"time":"2026-11-29T16:31:40.007Z","version":1}')


def test_non_ascii_text_is_kept_as_utf8():
    statement = ApprovalStatement("r", SHA, "g", "reject", "Änderung – nicht heute",
                                  "2026-11-29T16:20:05.123Z", "zoë")
    assert "Änderung – nicht heute".encode() in statement.to_bytes()
    assert b'"approver":"zo\xc3\xab"' in statement.to_bytes()


@pytest.mark.parametrize("field, value, message", [
    ("runbook_sha256", "ABC", "64 lower-case hex digits"),
    ("runbook_sha256", SHA.upper(), "64 lower-case hex digits"),
    ("gate", "", "the gate is empty"),
    ("approver", "", "the approver is empty"),
    ("approver", "al\nice", "contains control characters"),
    ("approver", "x" * 300, "longer than 256 characters"),
    ("run_id", 7, "the run id must be text, not int"),
    ("decision", "maybe", "approve or reject, not 'maybe'"),
    ("reason", "x" * 5000, "longer than 4096"),
    ("reason", "\udcff", "not valid Unicode text"),
    ("time", "2026-11-29T16:20:05Z", "not UTC RFC 3339 with milliseconds"),
    ("time", "2026-11-29T16:20:05.123+00:00", "not UTC RFC 3339 with milliseconds"),
    ("time", "2026-02-30T16:20:05.123Z", "not a real date and time"),
])
def test_invalid_approval_fields_are_refused(field, value, message):
    fields = dict(run_id="r", runbook_sha256=SHA, gate="g", decision="approve", reason="",
                  time="2026-11-29T16:20:05.123Z", approver="alice")
    with pytest.raises(StatementError, match=message):
        ApprovalStatement(**{**fields, field: value})


@pytest.mark.parametrize("seq", [-1, True, 1.0, "1"])
def test_a_head_seq_is_a_whole_number(seq):
    with pytest.raises(StatementError, match="the seq must be a whole number"):
        HeadStatement("r", seq, SHA, "2026-11-29T16:20:05.123Z", "alice")


@pytest.mark.parametrize("data, message", [
    (b"\xff", "not JSON text"),
    (b"[1]", "not a JSON object"),
    (b'{"format":"runbook-head"}', "not a runbook-approval statement"),
    (b'{"format":"runbook-approval","version":2}', "version 2 is not supported"),
    (b'{"format":"runbook-approval","version":true}', "version True is not supported"),
    (b'{"format":"runbook-approval","version":1,"extra":1}', "missing: approver"),
    (b"[" * 100000, "over the 65536-byte limit"),
    (b"[" * 60000, "not JSON text"),
])
def test_what_is_not_an_approval_statement_says_why(data, message):
    with pytest.raises(StatementError, match=message):
        ApprovalStatement.from_bytes(data)


def test_a_time_is_written_in_utc_with_milliseconds():
    moment = datetime(2026, 11, 29, 17, 20, 5, 123999, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment) == "2026-11-29T16:20:05.123Z"
    assert parse_time("2026-11-29T16:20:05.123Z") == moment.replace(microsecond=123000)
    with pytest.raises(StatementError, match="must carry its time zone"):
        format_time(datetime(2026, 11, 29))


@given(st.text(max_size=50), st.text(max_size=200))
def test_a_signed_statement_survives_its_json_form(statement, signature):
    signed = Signed(statement, signature)
    assert Signed.from_json(signed.to_json()) == signed


@pytest.mark.parametrize("text", ["", "[]", '{"statement": 1, "signature": "x"}',
                                  '{"statement": "x"}'])
def test_a_broken_seal_file_is_refused(text):
    with pytest.raises(StatementError):
        Signed.from_json(text)


def test_the_statements_in_the_docs_are_real_statements():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "signatures.md").read_text()
    blocks = [b.split("```")[0].strip() for b in docs.split("```json\n")[1:]]
    assert len(blocks) == 2
    assert ApprovalStatement.from_bytes(blocks[0].encode()).approver == "alice"
    assert HeadStatement.from_bytes(blocks[1].encode()).seq == 41
