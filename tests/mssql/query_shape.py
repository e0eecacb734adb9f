"""Read a compiled T-SQL SELECT / UPDATE and judge which index SQL Server can seek with it.

No server means no execution plan, so this applies the optimizer's documented rules
to the statement as the driver sends it (``?`` placeholders, bound values):

* an index is sought on its leading key columns compared by equality, then at most
  one more key column compared by a range;
* the index delivers the ORDER BY (no sort, so ``TOP n`` stops after n rows) when the
  ordered columns are the key columns that follow the equality prefix, all in one
  direction; a non-unique nonclustered index carries the clustered key (the primary
  key here) after its own columns, so a trailing ``id`` is delivered too;
* a filtered index is only eligible when the query repeats its filter predicate;
  and a cached (parameterized) plan never uses a filtered index whose filter column
  the query compares to a *parameter*, because the plan must stay valid for every
  value of that parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, cast

import sqlglot
from django.db import models
from sqlglot import exp

EQUALITY = "="
RANGES = frozenset({"<", "<=", ">", ">="})
_OPS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.In: "IN",
}


@dataclass(frozen=True)
class Bound:
    """A value sent as a driver parameter (``@P<n>`` on the server)."""

    value: Any


@dataclass(frozen=True)
class Constant:
    """A value written into the statement's text."""

    value: Any


@dataclass
class QueryShape:
    sql: str
    tree: exp.Expr
    table: str
    hints: tuple[str, ...]
    top: int | None
    params: tuple[Any, ...] = ()
    predicates: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    conjunctive: bool = True
    order_by: tuple[tuple[str, bool], ...] = ()

    def operators(self, column: str) -> set[str]:
        return {op for op, _ in self.predicates.get(column, ())}


def _value(node: exp.Expr, params: list[Any]) -> Any:
    if isinstance(node, exp.Parameter):
        return Bound(params[int(node.name.lstrip("Pp")) - 1])
    if isinstance(node, exp.National):  # N'...'
        return Constant(node.this)
    if isinstance(node, exp.Literal):
        return Constant(node.this if node.is_string else node.to_py())
    return Constant(node.sql("tsql"))


def shape(sql: str, params: Any = ()) -> QueryShape:
    """Parse one statement as the driver receives it; ``?`` are numbered ``@P1``…"""
    params = list(params or ())
    pieces = sql.split("?")
    if len(pieces) - 1 != len(params):
        raise ValueError(f"{len(pieces) - 1} placeholders for {len(params)} parameters: {sql}")
    numbered = pieces[0] + "".join(f"@P{i}{rest}" for i, rest in enumerate(pieces[1:], 1))
    numbered = re.sub(r"^\s*SET NOCOUNT (?:ON|OFF);\s*", "", numbered)
    tree = sqlglot.parse_one(numbered, read="tsql")
    table = tree.find(exp.Table)
    assert table is not None
    hints: tuple[str, ...] = ()
    for hint in table.args.get("hints") or ():
        hints += tuple(e.name.upper() for e in hint.expressions)
    limit = tree.args.get("limit")
    top = int(limit.expression.to_py()) if limit is not None and limit.expression else None
    found = QueryShape(
        sql=sql, tree=tree, table=table.name, hints=hints, top=top, params=tuple(params)
    )
    where = tree.args.get("where")
    if where is not None:
        _conjuncts(where.this, params, found)
    order = tree.args.get("order")
    if order is not None:
        found.order_by = tuple(
            (o.this.name, bool(o.args.get("desc")))
            for o in order.expressions
            if isinstance(o.this, exp.Column)
        )
    return found


def _conjuncts(node: exp.Expr, params: list[Any], found: QueryShape) -> None:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        _conjuncts(node.this, params, found)
        _conjuncts(node.expression, params, found)
        return
    op = _OPS.get(type(node))
    if op and isinstance(node.this, exp.Column):
        if op == "IN":
            value: Any = tuple(_value(e, params) for e in node.expressions)
        else:
            value = _value(node.expression, params)
        found.predicates.setdefault(node.this.name, []).append((op, value))
    elif isinstance(node, exp.Is) and isinstance(node.this, exp.Column):
        found.predicates.setdefault(node.this.name, []).append(("IS", None))
    else:
        found.conjunctive = False


@dataclass(frozen=True)
class IndexFit:
    index: str
    columns: tuple[str, ...]
    equality_prefix: tuple[str, ...]
    range_column: str | None
    delivers_order: bool
    filter_columns: tuple[str, ...]
    filter_repeated: bool  # the query states every filter predicate (as a constant or bound)
    filter_bound: tuple[str, ...]  # filter columns the query compares to a parameter

    @property
    def seeks(self) -> bool:
        return bool(self.equality_prefix or self.range_column)

    @property
    def usable_by_cached_plan(self) -> bool:
        return self.filter_repeated and not self.filter_bound and self.seeks


def _column(model: type[models.Model], name: str) -> str:
    """The column of ``model``'s concrete field ``name`` (a key or filter field)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column is not None
    return field.column


def _filter_equalities(model: type[models.Model], condition: models.Q) -> dict[str, Any]:
    """``condition`` (AND of ``field=value`` only) as {column: value}; else ValueError."""
    if condition.connector != models.Q.AND or condition.negated:
        raise ValueError(f"not an AND of equalities: {condition!r}")
    equalities = {}
    for child in condition.children:
        if isinstance(child, models.Q):
            equalities.update(_filter_equalities(model, child))
            continue
        lookup, value = cast(tuple[str, Any], child)  # a (lookup, value) pair
        name, _, kind = lookup.partition("__")
        if kind not in ("", "exact"):
            raise ValueError(f"not an equality: {lookup}")
        equalities[_column(model, name)] = value
    return equalities


def fit(
    found: QueryShape,
    model: type[models.Model],
    index: models.Index | models.UniqueConstraint | str,
) -> IndexFit:
    """How ``index`` (an Index/UniqueConstraint of ``model``, or its name) serves ``found``."""
    if isinstance(index, str):
        named = [*model._meta.indexes, *model._meta.constraints]
        index = cast(
            "models.Index | models.UniqueConstraint", next(i for i in named if i.name == index)
        )
    columns = tuple(_column(model, f.lstrip("-")) for f in index.fields)
    prefix: list[str] = []
    range_column = None
    for column in columns:
        operators = found.operators(column)
        if EQUALITY in operators or ("IN" in operators and len(found.predicates[column]) == 1):
            prefix.append(column)
            continue
        if operators & RANGES:
            range_column = column
        break
    rest = columns[len(prefix) :]
    ordered = [column for column, _ in found.order_by]
    if ordered and ordered[-1] == model._meta.pk.column and not index_is_unique(index):
        ordered = ordered[:-1]
    directions = {desc for _, desc in found.order_by}
    delivers = len(directions) <= 1 and tuple(ordered) == rest[: len(ordered)]
    condition = getattr(index, "condition", None)
    filters = _filter_equalities(model, condition) if condition is not None else {}
    repeated, bound = True, []
    for column, wanted in filters.items():
        stated = [v for op, v in found.predicates.get(column, ()) if op == EQUALITY]
        if not any(v.value == wanted for v in stated):
            repeated = False
        if any(isinstance(v, Bound) for v in stated):
            bound.append(column)
    return IndexFit(
        index=index.name,
        columns=columns,
        equality_prefix=tuple(prefix),
        range_column=range_column,
        delivers_order=delivers,
        filter_columns=tuple(filters),
        filter_repeated=repeated,
        filter_bound=tuple(bound),
    )


def index_is_unique(index: Any) -> bool:
    return isinstance(index, models.UniqueConstraint)


def best_cached_plan_index(
    found: QueryShape, model: type[models.Model]
) -> tuple[IndexFit | None, list[IndexFit]]:
    """The index a cached plan can seek that also delivers the order, if any; and all fits."""
    candidates = [*model._meta.indexes]
    candidates += [c for c in model._meta.constraints if isinstance(c, models.UniqueConstraint)]
    fits = [fit(found, model, index) for index in candidates]
    usable = [
        f for f in fits if f.usable_by_cached_plan and (f.delivers_order or not found.order_by)
    ]
    return (usable[0] if usable else None), fits
