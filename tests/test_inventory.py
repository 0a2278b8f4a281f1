"""Ansible-style YAML inventories: hosts and groups, vars merged Ansible's way, host
resolution, `--limit` patterns, and every inventory error with its line and column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook_lang.syntax.diagnostics import render_text
from runbook_lang.targets.inventory import (
    Inventory,
    InventoryError,
    load_inventory,
    parse_inventory,
)
from runbook_lang.targets.patterns import TargetError, limit, resolve, select

EXAMPLE = """\
all:
  vars:
    ntp: all.example
    color: grey
    tier: none
  hosts:
    mail1:
  children:
    web:
      vars:
        color: blue
        tier: web
        http_port: 80
      hosts:
        web[1:3]:
        web4:
          color: red
          ansible_host: 10.0.0.4
          ansible_port: 2222
          ansible_user: deploy
      children:
        canary:
          vars:
            color: yellow
          hosts:
            web2:
    db:
      hosts:
        db1:
          ansible_ssh_common_args: '-F ssh.cfg -o ProxyJump=bastion -i keys/db'
        db2:
"""


def load(text: str, tmp_path: Path, name: str = "inventory.yaml") -> Inventory:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_inventory(path, name)


def errors(text: str, tmp_path: Path) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        load(text, tmp_path)
    return caught.value


def rendered(error: InventoryError) -> str:
    return "\n\n".join(render_text(d, error.lines_of) for d in error.diagnostics)


@pytest.fixture
def example(tmp_path) -> Inventory:
    return load(EXAMPLE, tmp_path)


# -- hosts, groups and vars ------------------------------------------------------------------


def test_hosts_in_inventory_order_and_groups(example):
    assert list(example.hosts) == ["mail1", "web1", "web2", "web3", "web4", "db1", "db2"]
    assert example.groups_map() == {
        "all": ["mail1", "web1", "web2", "web3", "web4", "db1", "db2"],
        "web": ["web1", "web2", "web3", "web4"], "canary": ["web2"], "db": ["db1", "db2"],
        "ungrouped": ["mail1"]}
    assert example.hosts["web2"].groups == ("all", "web", "canary")
    assert example.hosts["mail1"].groups == ("all", "ungrouped")


def test_vars_host_over_child_group_over_parent_group_over_all(example):
    assert example.hosts["mail1"].vars == {"ntp": "all.example", "color": "grey",
                                           "tier": "none"}
    assert example.hosts["web1"].vars["color"] == "blue"  # web over all
    assert example.hosts["web2"].vars["color"] == "yellow"  # canary (a child) over web
    assert example.hosts["web2"].vars["tier"] == "web"  # inherited from the parent
    assert example.hosts["web4"].vars["color"] == "red"  # the host over every group
    assert example.hosts["web1"].vars["http_port"] == 80
    assert example.hostvars()["db1"]["ntp"] == "all.example"


def test_groups_of_the_same_depth_by_priority_then_name(tmp_path):
    inventory = load("""
        all:
          children:
            beta:
              hosts: {h1: }
              vars: {x: beta}
            alpha:
              hosts: {h1: }
              vars: {x: alpha}
            gamma:
              hosts: {h2: , h3: }
              vars: {x: gamma, ansible_group_priority: 10}
            delta:
              hosts: {h2: , h3: }
              vars: {x: delta}
        """, tmp_path)
    assert inventory.hosts["h1"].vars["x"] == "beta"  # same priority: the later name wins
    assert inventory.hosts["h2"].vars["x"] == "gamma"  # the higher priority wins


def test_connection_settings(example, tmp_path):
    web4 = example.hosts["web4"].ssh
    assert (web4.name, web4.address, web4.port, web4.user) == ("web4", "10.0.0.4", 2222,
                                                               "deploy")
    db1 = example.hosts["db1"].ssh
    assert db1.config_file == str(tmp_path / "ssh.cfg")
    assert db1.options == (("ProxyJump", "bastion"), ("IdentityFile", str(tmp_path / "keys/db")))
    assert example.hosts["mail1"].ssh.address is None


def test_a_local_host(tmp_path):
    inventory = load("all: {hosts: {localhost: {ansible_connection: local}}}", tmp_path)
    assert inventory.hosts["localhost"].connection == "local"


def test_yaml_values_keep_their_types_and_dates_stay_text(tmp_path):
    inventory = load("""
        all:
          hosts:
            h1:
              n: 3
              f: 1.5
              b: yes
              none: ~
              day: 2024-05-01
              items: [1, two]
              map: {a: 1}
              padded: "007"
        """, tmp_path)
    assert inventory.hosts["h1"].vars == {"n": 3, "f": 1.5, "b": True, "none": None,
                                          "day": "2024-05-01", "items": [1, "two"],
                                          "map": {"a": 1}, "padded": "007"}


def test_merge_keys_in_vars(tmp_path):
    inventory = load("""
        defaults: &defaults
          vars: {}
        all:
          hosts:
            h1:
              <<: {region: eu, size: small}
              size: large
        """, tmp_path)
    assert inventory.hosts["h1"].vars == {"region": "eu", "size": "large"}


def test_ranges(tmp_path):
    inventory = load("""
        all:
          hosts:
            web[08:10].example.com:
            db-[a:c]:
            node[0:10:5]:
        """, tmp_path)
    assert list(inventory.hosts) == [
        "web08.example.com", "web09.example.com", "web10.example.com",
        "db-a", "db-b", "db-c", "node0", "node5", "node10"]


def test_groups_defined_twice_are_merged_and_hosts_listed_twice_kept_once(tmp_path):
    inventory = load("""
        web:
          hosts: {w1: {a: 1}}
        other:
          children:
            web:
              hosts: {w2: , w1: {b: 2}}
        """, tmp_path)
    assert inventory.groups_map()["web"] == ["w1", "w2"]
    assert inventory.groups_map()["other"] == ["w1", "w2"]
    assert inventory.hosts["w1"].vars == {"a": 1, "b": 2}


def test_an_empty_inventory_has_no_hosts(tmp_path):
    assert list(load("", tmp_path).hosts) == []
    assert list(load("all:\n", tmp_path).hosts) == []


# -- which hosts a step names -------------------------------------------------------------------


def names(hosts) -> list[str]:
    return [h.name for h in hosts]


def test_resolve_a_group_a_host_or_a_list_in_inventory_order_once(example):
    assert names(resolve(example, "web")) == ["web1", "web2", "web3", "web4"]
    assert names(resolve(example, "db1")) == ["db1"]
    assert names(resolve(example, ["db", "canary", "web2", "mail1"])) == [
        "mail1", "web2", "db1", "db2"]
    assert names(resolve(example, "all")) == list(example.hosts)


def test_an_unknown_name_is_an_error_with_a_suggestion(example):
    with pytest.raises(TargetError, match=r"no host or group named `wbe` in inventory "
                                          r"inventory.yaml \(did you mean `web`\?\)"):
        resolve(example, ["db", "wbe"])


def test_a_host_list_without_an_inventory():
    inventory = Inventory.from_names(["web1", "web2", "web1"])
    assert names(resolve(inventory, ["web2", "web1"])) == ["web1", "web2"]
    assert inventory.hosts["web1"].vars == {}
    assert inventory.groups_map()["all"] == ["web1", "web2"]
    with pytest.raises(TargetError, match="starts with `-`"):
        Inventory.from_names(["-oProxyCommand=id"])
    with pytest.raises(TargetError, match="no host or group named `db1` in the host list"):
        resolve(inventory, "db1")


# -- --limit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern, expected", [
    ("web", ["web1", "web2", "web3", "web4"]),
    ("web1,web2", ["web1", "web2"]),
    ("web1:web2", ["web1", "web2"]),
    ("web1, db2", ["web1", "db2"]),
    ("web*", ["web1", "web2", "web3", "web4"]),
    ("db?", ["db1", "db2"]),
    ("*", ["mail1", "web1", "web2", "web3", "web4", "db1", "db2"]),
    ("all", ["mail1", "web1", "web2", "web3", "web4", "db1", "db2"]),
    ("!db1", ["mail1", "web1", "web2", "web3", "web4", "db2"]),
    ("web:!canary", ["web1", "web3", "web4"]),
    ("!canary:web", ["web1", "web3", "web4"]),
    ("web:&canary", ["web2"]),
    ("&web:&canary", ["web2"]),
    ("web:db:!web4:!db2", ["web1", "web2", "web3", "db1"]),
    ("ungrouped", ["mail1"]),
])
def test_limit_patterns(example, pattern, expected):
    selected = select(example, pattern)
    assert names(limit(list(example.hosts.values()), selected)) == expected


def test_limit_narrows_a_steps_hosts_in_inventory_order(example):
    hosts = resolve(example, ["db", "web"])
    assert names(limit(hosts, select(example, "db2,web3"))) == ["web3", "db2"]
    assert limit(hosts, None) == hosts


@pytest.mark.parametrize("pattern, message", [
    ("web:&db", "--limit 'web:&db' selects no host"),
    ("nosuch*", "--limit 'nosuch\\*' selects no host"),
    ("wbe1", "no host or group named `wbe1` in inventory inventory.yaml \\(did you mean"),
    ("web:!cannary", "no host or group named `cannary`"),
    ("", "--limit needs a pattern"),
    (" , ", "--limit needs a pattern"),
    ("~web.*", "regular expressions are not supported"),
    ("web[0]", "subscripts like group\\[0\\] are not supported"),
    ("web:!", "`!` and `&` must be followed by a pattern"),
])
def test_bad_or_empty_limits_are_clear_errors(example, pattern, message):
    with pytest.raises(TargetError, match=message):
        select(example, pattern)


def test_limit_errors_exit_with_2():
    from runbook_lang.errors import EXIT_USAGE, UsageError

    assert issubclass(TargetError, UsageError) and EXIT_USAGE == 2


# -- errors, with their place in the file ---------------------------------------------------


def test_syntax_error_points_at_the_line_and_column(tmp_path):
    error = errors("all:\n  hosts:\n    web1: {a: 1\n    web2:\n", tmp_path)
    [d] = error.diagnostics
    assert d.code == "E301" and d.location.path == "inventory.yaml"
    assert (d.location.line, d.location.column) == (4, 9)


def test_a_typo_in_a_group_key_is_an_error_not_an_empty_group(tmp_path):
    error = errors("web:\n  host:\n    web1:\n", tmp_path)
    [d] = error.diagnostics
    assert (d.code, d.location.line, d.location.column) == ("E302", 2, 3)
    assert d.message.startswith("`host` is not a key of a group")
    assert d.hints == ("did you mean `hosts`?",)


@pytest.mark.parametrize("text, code, line, column, words", [
    ("- web1\n- web2\n", "E302", 1, 1, "a mapping of group names"),
    ("web:\n  hosts: [web1, web2]\n", "E302", 2, 10, "must be a mapping of host names"),
    ("web:\n  hosts:\n    web1: [1]\n", "E302", 3, 11, "mapping of its vars"),
    ("web: 3\n", "E302", 1, 6, "must be a mapping"),
    ("web:\n  vars: [a]\n", "E302", 2, 9, "the vars of group `web` must be a mapping"),
    ("all:\n  hosts:\n    h1:\n      pw: !vault |\n        abc\n", "E302", 4, 11,
     "`!vault` is not supported"),
    ("all:\n  hosts:\n    -oProxyCommand=id:\n", "E303", 3, 5, "starts with `-`"),
    ("all:\n  hosts:\n    'web 1':\n", "E303", 3, 5, "characters ssh would not take"),
    ("all:\n  hosts:\n    web[3:1]:\n", "E303", 3, 5, "starts after it ends"),
    ("all:\n  hosts:\n    web[01:5]:\n", "E303", 3, 5, "the same width"),
    ("all:\n  children:\n    'a,b':\n", "E303", 3, 5, "patterns would misread it"),
    ("a:\n  children:\n    b:\n      children:\n        a:\n", "E304", 1, 1,
     "group `a` is its own descendant: a → b → a"),
    ("all:\n  hosts:\n    web1:\n    web1:\n", "E306", 4, 5, "`web1` is given twice"),
    ("web:\n  hosts:\n    web:\n", "E307", 3, 5, "`web` is both a host and a group"),
    ("all:\n  hosts:\n    h1:\n      ansible_port: 99999\n", "E308", 4, 21,
     "port number from 1 to 65535"),
    ("all:\n  hosts:\n    h1:\n      ansible_host: -oProxyCommand=x\n", "E308", 4, 21,
     "is not a host name or an IP address"),
    ("all:\n  vars:\n    ansible_user: 'root; id'\n  hosts:\n    h1:\n", "E308", 3, 19,
     "is not a login name"),
    ("all:\n  hosts:\n    h1:\n      ansible_ssh_common_args: -o StrictHostKeyChecking=no\n",
     "E308", 4, 32, "never turns host key checking off"),
    ("all:\n  hosts:\n    h1:\n      ansible_ssh_common_args: -oUserKnownHostsFile=/dev/null\n",
     "E308", 4, 32, "never turns host key checking off"),
    ("all:\n  hosts:\n    h1:\n      ansible_ssh_common_args: -o ControlPath=/tmp/x\n",
     "E308", 4, 32, "set by runbook itself"),
    ("all:\n  hosts:\n    h1:\n      ansible_ssh_common_args: -v -R 80:x:80\n",
     "E308", 4, 32, "is not supported here"),
    ("all:\n  hosts:\n    h1:\n      ansible_connection: winrm\n", "E308", 4, 27,
     "is not supported"),
    ("web:\n  vars:\n    ansible_group_priority: high\n  hosts: {h1: }\n", "E308", 3, 29,
     "must be an integer"),
])
def test_inventory_errors(tmp_path, text, code, line, column, words):
    error = errors(text, tmp_path)
    found = [(d.code, d.location.line, d.location.column) for d in error.diagnostics]
    assert (code, line, column) in found, rendered(error)
    assert any(words in d.message for d in error.diagnostics), rendered(error)


def test_every_problem_is_reported_at_once(tmp_path):
    error = errors("web:\n  host:\n    a:\ndb:\n  hosts:\n    -x:\n    y:\n      ansible_port: 0\n",
                   tmp_path)
    assert [d.code for d in error.diagnostics] == ["E302", "E303", "E308"]


def test_rendered_errors_as_the_user_sees_them(tmp_path, snapshot):
    error = errors("""\
        all:
          children:
            web:
              host:
                web1:
              hosts:
                web2:
                web2:
                web3:
                  ansible_port: "22; id"
            db:
              hosts:
                -oProxyCommand=touch /tmp/x:
        """, tmp_path)
    assert rendered(error) == snapshot


def test_files_that_cannot_be_read(tmp_path):
    with pytest.raises(InventoryError, match=r"inventory nope.yaml: no such file"):
        load_inventory(tmp_path / "nope.yaml", "nope.yaml")
    with pytest.raises(InventoryError, match="is a directory"):
        load_inventory(tmp_path, "dir")
    (tmp_path / "latin1.yaml").write_bytes(b"all:\n  hosts:\n    caf\xe9:\n")
    with pytest.raises(InventoryError, match=r"not UTF-8 text \(byte 0xe9 on line 3\)") as c:
        load_inventory(tmp_path / "latin1.yaml", "latin1.yaml")
    assert c.value.diagnostics[0].code == "E300"


def test_a_file_too_large_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    from runbook_lang.targets import inventory

    monkeypatch.setattr(inventory, "MAX_BYTES", 1000)
    (tmp_path / "big.yaml").write_text("all:\n  hosts:\n" + "    h:\n" * 200)
    with pytest.raises(InventoryError, match="larger than") as caught:
        load_inventory(tmp_path / "big.yaml")
    assert caught.value.diagnostics[0].code == "E300"


def test_an_alias_bomb_stops_early(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        levels.append(f"a{i}: &a{i} [{refs}]")
    text = "all:\n  vars:\n" + "".join(f"    {line}\n" for line in levels)
    error = errors(text, tmp_path)
    assert [d.code for d in error.diagnostics] == ["E305"]
    assert "too many values" in error.diagnostics[0].message


def test_a_merge_bomb_stops_early(tmp_path):
    levels = ["m0: &m0 {k0: 1, k1: 1}"]
    for i in range(1, 12):
        refs = ", ".join([f"*m{i - 1}"] * 10)
        levels.append(f"m{i}: &m{i} {{<<: [{refs}]}}")
    text = "all:\n  vars:\n" + "".join(f"    {line}\n" for line in levels)
    error = errors(text, tmp_path)
    assert [d.code for d in error.diagnostics] == ["E305"]


def test_deep_nesting_is_refused(tmp_path):
    error = errors("all:\n  vars:\n    v: " + "[" * 5000 + "]" * 5000 + "\n", tmp_path)
    assert [d.code for d in error.diagnostics] == ["E305"]
    error = errors("all:\n  vars:\n    v: " + "[" * 150 + "]" * 150 + "\n", tmp_path)
    assert [d.code for d in error.diagnostics] == ["E305"]


def test_a_huge_range_is_refused(tmp_path):
    error = errors("all:\n  hosts:\n    h[0:9999999]:\n", tmp_path)
    assert [d.code for d in error.diagnostics] == ["E305"]


def test_inventory_text_is_never_executed(tmp_path):
    text = "all:\n  vars:\n    x: !!python/object/apply:os.system ['touch pwned']\n"
    error = errors(text, tmp_path)
    assert [d.code for d in error.diagnostics] == ["E302"]
    assert not (Path.cwd() / "pwned").exists()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_an_inventory_or_diagnostics(text):
    try:
        inventory = parse_inventory(text, "fuzz.yaml")
    except InventoryError as error:
        assert error.diagnostics and all(d.code.startswith("E3") for d in error.diagnostics)
        assert all(d.location is None or d.location.line >= 1 for d in error.diagnostics)
    else:
        assert all(not name.startswith("-") for name in inventory.hosts)


# -- the documentation --------------------------------------------------------------------------


def documented_inventory_examples() -> dict[str, str]:
    """Code -> the YAML example of its section in docs/diagnostics.md."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "diagnostics.md").read_text()
    sections = re.split(r"^## (?=E3\d\d\b)", text, flags=re.MULTILINE)[1:]
    examples = {}
    for section in sections:
        block = re.search(r"^```yaml\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
        if block:
            examples[section[:4]] = block.group(1)
    return examples


def test_every_inventory_code_but_e300_has_an_example():
    assert set(documented_inventory_examples()) == {f"E30{i}" for i in range(1, 9)}


@pytest.mark.parametrize(("code", "text"), sorted(documented_inventory_examples().items()))
def test_documented_inventory_example_gives_its_code(tmp_path, code, text):
    if code == "E305":  # the documented bomb is cut short: grow it to the real thing
        text = text.replace("    # … and so on\n", "")
        previous = "c"
        for i in range(8):
            text += f"    d{i}: &d{i} [{', '.join([f'*{previous}'] * 10)}]\n"
            previous = f"d{i}"
    error = errors(text, tmp_path)
    assert code in [d.code for d in error.diagnostics], rendered(error)
