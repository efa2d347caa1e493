"""A lint over every SQL statement in the project: no output alias may shadow a column that ORDER BY,
GROUP BY or DISTINCT ON names.

PostgreSQL binds a bare name in ORDER BY (and DISTINCT ON) to an output column first, and in GROUP BY
to an input column first. `SELECT transaction_id::text ... ORDER BY transaction_id` is implicitly
named after the column it casts, so it sorted transaction ids as text (10014 before 9902) and
projections skipped events. An alias that differs from every column it could be mistaken for makes
the intent unambiguous either way.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot
from sqlalchemy.sql.elements import TextClause
from sqlglot import exp
from sqlglot.errors import SqlglotError

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("service", "handlers", "events", "projections")
OTHER_SOURCES = ("migrations", "tests")
SQL_START = ("SELECT ", "WITH ", "INSERT ", "UPDATE ", "DELETE ")  # the project writes SQL keywords in capitals
THIS_FILE = Path(__file__).resolve()


def module_statements() -> Iterator[tuple[str, str]]:
    """(where, statement) for every `text()` statement a runtime module defines at import, as composed."""
    for directory in RUNTIME_PACKAGES:
        for path in sorted((ROOT / directory).rglob("*.py")):
            module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            for name, value in vars(module).items():
                if isinstance(value, TextClause):
                    yield f"{module.__name__}.{name}", value.text


def literal_statements() -> Iterator[tuple[str, str]]:
    """(where, statement) for every plain string literal that reads as a query, in any source file
    (migrations and tests included). F-strings are left to `module_statements`, which sees them built."""
    for directory in (*RUNTIME_PACKAGES, *OTHER_SOURCES):
        for path in sorted(set((ROOT / directory).rglob("*.py")) - {THIS_FILE}):  # its examples break the rule
            tree = ast.parse(path.read_text(), filename=str(path))
            inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                               for part in node.values}  # fmt: skip
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in inside_fstrings
                    and node.value.lstrip().startswith(SQL_START)
                ):
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", node.value


def _shadowing_aliases(select: exp.Select) -> set[str]:
    """Output names that belong to a computed expression but equal a column of the input."""
    input_columns = {c.name for key in ("where", "joins", "from") for c in _columns(select.args.get(key))}
    shadowing = set()
    for item in select.expressions:
        computed = item.this if isinstance(item, exp.Alias) else item
        if isinstance(computed, exp.Column | exp.Star):
            continue
        name = item.alias_or_name
        if name and (name in input_columns or name in {c.name for c in computed.find_all(exp.Column)}):
            shadowing.add(name)
    return shadowing


def _columns(node: exp.Expression | list[exp.Expression] | None) -> Iterator[exp.Column]:
    for part in node if isinstance(node, list) else [node]:
        if part is not None:
            yield from part.find_all(exp.Column)


def _bare_names(select: exp.Select) -> Iterator[tuple[str, str]]:
    """(clause, name) for every unqualified name in ORDER BY, GROUP BY and DISTINCT ON."""
    order = select.args.get("order")
    for ordered in order.expressions if order else []:
        yield from _bare("ORDER BY", ordered.this)
    group = select.args.get("group")
    for item in group.expressions if group else []:
        yield from _bare("GROUP BY", item)
    distinct = select.args.get("distinct")
    on = distinct.args.get("on") if distinct else None
    for item in on.expressions if isinstance(on, exp.Tuple) else [on] if on else []:
        yield from _bare("DISTINCT ON", item)


def _bare(clause: str, node: exp.Expression) -> Iterator[tuple[str, str]]:
    if isinstance(node, exp.Column) and not node.table:
        yield clause, node.name


def violations(sql: str) -> list[str]:
    found = []
    for statement in sqlglot.parse(sql, read="postgres"):
        for select in statement.find_all(exp.Select) if statement else []:
            shadowing = _shadowing_aliases(select)
            found += [f"{clause} {name}" for clause, name in _bare_names(select) if name in shadowing]
    return found


def test_the_lint_catches_the_text_ordered_transaction_id() -> None:
    before_the_fix = """
        SELECT transaction_id::text, position FROM eventstore.events
        WHERE transaction_id < CAST(:fence AS xid8)
        ORDER BY transaction_id DESC, position DESC LIMIT 1"""
    assert violations(before_the_fix) == ["ORDER BY transaction_id"]
    assert violations("SELECT lower(status) AS status, count(*) FROM t GROUP BY status") == ["GROUP BY status"]
    assert violations("SELECT DISTINCT ON (id) id::text FROM t ORDER BY id") == ["ORDER BY id", "DISTINCT ON id"]
    assert violations("SELECT transaction_id::text AS txid_text FROM t ORDER BY transaction_id") == []
    assert violations("SELECT count(*) AS n FROM t GROUP BY kind ORDER BY n") == []


def test_the_project_has_sql_to_check() -> None:
    composed = dict(module_statements())
    assert "service.eventstore._READ" in composed
    assert len(composed) > 40
    assert len(dict(literal_statements())) > 20


@pytest.mark.parametrize(("where", "sql"), list(module_statements()), ids=lambda value: value if "." in value else "")
def test_no_module_statement_has_an_alias_that_shadows_an_ordering_column(where: str, sql: str) -> None:
    found = violations(sql)  # every composed statement must parse: no statement goes unchecked
    assert not found, f"{where}: {', '.join(found)} names an output alias that shadows a column; rename the alias"


@pytest.mark.parametrize(("where", "sql"), list(literal_statements()), ids=lambda value: value if ":" in value else "")
def test_no_literal_statement_has_an_alias_that_shadows_an_ordering_column(where: str, sql: str) -> None:
    try:
        found = violations(sql)
    except SqlglotError:
        pytest.skip(f"{where}: a fragment of a statement composed elsewhere")
    assert not found, f"{where}: {', '.join(found)} names an output alias that shadows a column; rename the alias"
