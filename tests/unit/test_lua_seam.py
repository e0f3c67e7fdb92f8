"""The Python-Lua seam: the scripts use only what `store/scripts.py` and `store/keys.py` name.

Reads every script under `store/lua/` and fails when the two sides disagree: an argument,
key, record field, result code or reply name used on one side and not defined (or not used)
on the other. tests/integration/test_lua_seam.py runs the generated preludes in Redis.
"""

from __future__ import annotations

import re
from dataclasses import fields
from importlib.resources import files
from pathlib import Path

import pytest

from agentroster.registry.prepare import Prepared
from agentroster.store.keys import LAYOUT, Keys, lua_builders, parameters
from agentroster.store.scripts import APPLY, SPECS, SUMMARY_FIELDS, Code, ScriptSpec

LUA = files("agentroster.store") / "lua"
COMMON = (LUA / "common.lua").read_text()
SRC = Path(__file__).resolve().parents[2] / "src" / "agentroster"


def _body(spec: ScriptSpec) -> str:
    """What the script's author wrote (common.lua included for a writer), comments removed."""
    text = (COMMON + "\n" if spec.common else "") + (LUA / spec.file).read_text()
    return re.sub(r"--[^\n]*", "", text)


def _calls(text: str, name: str) -> list[str]:
    """The argument text of every call `name(...)` (balanced parentheses)."""
    found = []
    for match in re.finditer(rf"\b{re.escape(name)}\(", text):
        depth, start = 1, match.end()
        for pos in range(start, len(text)):
            depth += {"(": 1, ")": -1}.get(text[pos], 0)
            if depth == 0:
                found.append(text[start:pos])
                break
    return found


def _arity(arguments: str) -> int:
    """How many arguments a call's text holds (top-level commas)."""
    depth, count = 0, 1 if arguments.strip() else 0
    for char in arguments:
        depth += {"(": 1, "{": 1, ")": -1, "}": -1}.get(char, 0)
        count += char == "," and depth == 0
    return count


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.file)
def test_scripts_never_index_argv_or_keys(spec: ScriptSpec) -> None:
    """A script reads its arguments by name: ARGV only as `ARGV[o + F_<FIELD>]` of a record
    field the spec names, KEYS never (the keys route the call; the script builds them)."""
    body = _body(spec)
    assert "KEYS[" not in body
    record = {f"F_{f.upper()}" for f in spec.record}
    used = re.findall(r"ARGV\[([^\]]*)\]", body)
    assert all(re.fullmatch(r"o \+ F_[A-Z_]+", index) for index in used), used
    assert {index.removeprefix("o + ") for index in used} == record


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.file)
def test_every_argument_is_used(spec: ScriptSpec) -> None:
    """Every argument Python passes is read by the script (no stale position)."""
    body = _body(spec)
    for arg in spec.arguments:
        if arg.name == "P" and re.search(r"\bK_", body):
            continue  # the key base: the generated key builders read it
        assert re.search(rf"\b{arg.name}\b", body), f"{spec.file} never reads {arg.name}"
    if spec.rest:
        assert re.search(rf"\b{spec.rest}\b", body)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.file)
def test_keys_come_from_the_layout(spec: ScriptSpec) -> None:
    """No key is spelled by hand (`P .. '...'`); every `K_<NAME>` is in `keys.LAYOUT`, called
    with as many parts as its template has; the spec's KEYS are layout names too."""
    body = _body(spec)
    assert not re.search(r"\bP\s*\.\.", body), f"{spec.file} builds a key by hand"
    builders = {f"K_{name.upper()}": name for name in LAYOUT}
    for used in set(re.findall(r"\bK_[A-Z_]+\b", body)):
        assert used in builders, f"{spec.file} uses {used}, which keys.LAYOUT does not define"
        params = parameters(builders[used])
        if params:
            assert all(_arity(args) == len(params) for args in _calls(body, used)), used
        else:
            assert not _calls(body, used), f"{used} is a string, not a function"
    assert set(spec.keys) <= set(LAYOUT)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.file)
def test_replies_name_every_field(spec: ScriptSpec) -> None:
    """Every `return` goes through `REPLY{...}`, whose names are exactly the spec's reply."""
    body = _body(spec)
    replies = _calls(body, "REPLY")
    assert replies, f"{spec.file} never replies by name"
    for reply in replies:
        table = re.match(r"\s*\{(.*)\}", reply, re.S)
        assert table, reply
        names = re.findall(r"(?:^|,)\s*([a-z_]+)\s*=(?!=)", table.group(1))
        assert tuple(names) == spec.reply, (spec.file, names)
    bare = re.findall(r"\breturn\s+\{", body)
    assert not bare, f"{spec.file} returns a table that is not a REPLY"


def test_every_code_has_a_name_and_is_returned() -> None:
    """apply.lua returns only named codes (no bare number), and every `Code` is returned."""
    body = _body(APPLY)
    assignments = re.findall(r"codes\[#codes \+ 1\] = ([^\n]*)", body)
    assert assignments
    returned: set[str] = set()
    for expression in assignments:
        expression = re.sub(r"\[[^\]]*\]", "", expression)  # table indexes are not codes
        assert not re.search(r"\b\d+\b", expression), expression
        returned |= set(re.findall(r"\b[A-Z][A-Z_]+\b", expression)) - {"STUCK_AFTER", "ARGV"}
    assert returned == {code.name for code in Code}


def test_record_is_the_prepared_command() -> None:
    """apply.lua's record is made of `Prepared`'s fields (Python packs them by name), and the
    generated stride is the record's length (that each is read: the ARGV test above)."""
    assert set(APPLY.record) <= {f.name for f in fields(Prepared)}
    assert len(set(APPLY.record)) == len(APPLY.record)
    prelude = APPLY.prelude()
    assert f"local RECORDS, STRIDE = {len(APPLY.arguments)}, {len(APPLY.record)}" in prelude


def test_summary_fields_are_read_by_name() -> None:
    """query.lua and read_agent.lua take the summary fields from the generated list."""
    for spec in SPECS:
        if spec.tables.get("SUMMARY_FIELDS"):
            assert spec.tables["SUMMARY_FIELDS"] == SUMMARY_FIELDS
            assert "unpack(SUMMARY_FIELDS)" in _body(spec)


def test_every_script_has_a_spec() -> None:
    """Every `.lua` file but the shared common.lua is a script with a spec, and no Python
    module under src/ registers a script of its own (no inline Lua)."""
    on_disk = {p.name for p in LUA.iterdir() if p.name.endswith(".lua")}
    assert on_disk - {"common.lua"} == {spec.file for spec in SPECS}
    inline = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "register_script(" in path.read_text() and path.name != "scripts.py"
    ]
    assert not inline


def test_key_builders_match_keys() -> None:
    """The Lua builders and `Keys` spell every key alike (evaluated by hand: P .. parts)."""
    keys = Keys("p")
    for line in lua_builders().splitlines():
        name = re.search(r"K_([A-Z_]+)", line)
        assert name
        attr = name.group(1).lower()
        params = parameters(attr)
        value = line.split("return ")[-1].removesuffix(" end") if params else line.split("= ")[1]
        for param in params:
            value = value.replace(f" {param}", f" '<{param}>'")
        spelled = "".join(re.findall(r"'([^']*)'", value))
        accessor = getattr(keys, attr)
        expected = accessor(*(f"<{p}>" for p in params)) if params else accessor
        assert keys.base + spelled == expected
