"""A small boolean query language over attribute probabilities (seed 004's content-based retrieval).

Grammar (keywords case-insensitive, attribute names matched exactly or else case-insensitively)::

    expr   := term ('or' term)*
    term   := factor ('and' factor)*
    factor := 'not' factor | '(' expr ')' | NAME [('>' | '<' | '>=' | '<=') NUMBER]

``NAME`` alone means ``P(NAME) >= min_prob``, so ``not NAME`` means ``P(NAME) < min_prob``; a
``NUMBER`` is a probability in [0, 1]. The empty query matches every face. A query nests at most
:data:`MAX_DEPTH` parentheses and ``not`` and holds at most :data:`MAX_TERMS` attribute terms, so
that its SQL stays within what SQLite and PostgreSQL parse (SQLite's parser stack, its 127
arguments per function) and the recursive parser within Python's recursion limit.

A parsed :class:`Query` evaluates three ways that agree: :meth:`Query.mask` over a probability
matrix (brute force), :meth:`Query.where` as a SQLAlchemy boolean clause over one column per
attribute, and a *margin* for ranking (:meth:`Query.score`, :meth:`Query.score_clause`): a leaf
``p >= t`` scores ``p - t`` (``t - p`` for ``<``/``<=``), ``not`` negates, ``and`` takes the minimum
and ``or`` the maximum, so a face that satisfies the query scores >= 0, and the higher the score
the further every probability that decides it lies on the satisfying side.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

KEYWORDS = ("and", "or", "not")
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
MAX_DEPTH = 12
"""Most parentheses and ``not`` a query may nest, one inside the other (SQLite 3.40's parser
overflows at 19 levels of alternating ``and``/``or``)."""
MAX_TERMS = 64
"""Most attribute terms a query may hold."""
_TOKEN = re.compile(r"\s*(?:(?P<op>>=|<=|>|<)|(?P<paren>[()])|(?P<word>[A-Za-z0-9_.]+))")


class QueryError(ValueError):
    """A query that does not parse, or names an attribute the index does not hold."""


@dataclass(frozen=True)
class Token:
    """One lexical token: its ``kind`` (``op``, ``paren``, ``word`` or ``end``), text, offset."""

    kind: str
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token; `QueryError` on a bad character."""
    tokens: list[Token] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return [*tokens, Token("end", "", position)]
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise QueryError(f"unexpected character {text[position]!r} at position {position}")
        kind = match.lastgroup
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        position = match.end()


Columns = Mapping[str, Any]
"""Attribute name -> its values: numpy arrays, or SQLAlchemy column expressions."""


class least(GenericFunction[float]):  # noqa: N801  (SQL function names are lower case)
    """The smallest of its arguments: ``MIN(a, b, ...)`` on SQLite, ``LEAST`` elsewhere."""

    type = sa.Float()
    inherit_cache = True


class greatest(GenericFunction[float]):  # noqa: N801
    """The largest of its arguments: ``MAX(a, b, ...)`` on SQLite, ``GREATEST`` elsewhere."""

    type = sa.Float()
    inherit_cache = True


@compiles(least, "sqlite")
def _least_sqlite(element: least, compiler: Any, **kw: Any) -> str:
    return f"MIN({compiler.process(element.clauses, **kw)})"


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"MAX({compiler.process(element.clauses, **kw)})"


@dataclass(frozen=True)
class Threshold:
    """A leaf: ``P(attribute) op value``."""

    attribute: str
    op: str
    value: float

    def holds(self, columns: Columns) -> Any:
        """Whether the leaf holds, for numpy arrays or SQL columns alike."""
        return COMPARISONS[self.op](columns[self.attribute], self.value)

    def margin(self, columns: Columns) -> Any:
        """How far the probability lies on the satisfying side of the threshold."""
        p = columns[self.attribute]
        return p - self.value if self.op in (">=", ">") else self.value - p

    def __str__(self) -> str:
        return f"{self.attribute}{self.op}{self.value:g}"


@dataclass(frozen=True)
class Not:
    """``not operand``."""

    operand: Node

    def holds(self, columns: Columns) -> Any:
        """Negation of the operand (``~`` works on numpy masks and SQL clauses)."""
        return ~self.operand.holds(columns)

    def margin(self, columns: Columns) -> Any:
        """The operand's margin, negated."""
        return -self.operand.margin(columns)

    def __str__(self) -> str:
        return f"not {self.operand}"


@dataclass(frozen=True)
class And:
    """``a and b and ...``."""

    operands: tuple[Node, ...]

    def holds(self, columns: Columns) -> Any:
        """Conjunction of the operands."""
        return reduce(operator.and_, (o.holds(columns) for o in self.operands))

    def margin(self, columns: Columns) -> Any:
        """The smallest margin of the operands."""
        margins = [o.margin(columns) for o in self.operands]
        if isinstance(margins[0], np.ndarray):
            return np.minimum.reduce(margins)
        return least(*margins)

    def __str__(self) -> str:
        return "(" + " and ".join(map(str, self.operands)) + ")"


@dataclass(frozen=True)
class Or:
    """``a or b or ...``."""

    operands: tuple[Node, ...]

    def holds(self, columns: Columns) -> Any:
        """Disjunction of the operands."""
        return reduce(operator.or_, (o.holds(columns) for o in self.operands))

    def margin(self, columns: Columns) -> Any:
        """The largest margin of the operands."""
        margins = [o.margin(columns) for o in self.operands]
        if isinstance(margins[0], np.ndarray):
            return np.maximum.reduce(margins)
        return greatest(*margins)

    def __str__(self) -> str:
        return "(" + " or ".join(map(str, self.operands)) + ")"


Node = Threshold | Not | And | Or


@dataclass(frozen=True)
class Query:
    """A parsed query: ``root`` is None for the empty query, which matches every face."""

    text: str
    root: Node | None

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attributes the query reads, in order of first mention."""
        names: dict[str, None] = {}

        def visit(node: Node) -> None:
            if isinstance(node, Threshold):
                names[node.attribute] = None
            elif isinstance(node, Not):
                visit(node.operand)
            else:
                for child in node.operands:
                    visit(child)

        if self.root is not None:
            visit(self.root)
        return tuple(names)

    def _columns(self, probabilities: np.ndarray, attributes: Sequence[str]) -> dict[str, Any]:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.ndim != 2 or probabilities.shape[1] != len(attributes):
            raise ValueError(
                f"expected probabilities of shape (N, {len(attributes)}), got {probabilities.shape}"
            )
        missing = [name for name in self.attributes if name not in attributes]
        if missing:
            raise QueryError(f"the query uses attributes the model lacks: {', '.join(missing)}")
        return {name: probabilities[:, list(attributes).index(name)] for name in self.attributes}

    def mask(self, probabilities: np.ndarray, attributes: Sequence[str]) -> np.ndarray:
        """Which rows of ``probabilities`` (N, K; columns named by ``attributes``) satisfy it."""
        columns = self._columns(probabilities, attributes)
        if self.root is None:
            return np.ones(len(probabilities), dtype=bool)
        return np.asarray(self.root.holds(columns), dtype=bool)

    def score(self, probabilities: np.ndarray, attributes: Sequence[str]) -> np.ndarray:
        """The ranking margin of every row (>= 0 where it matches; 1 for the empty query)."""
        columns = self._columns(probabilities, attributes)
        if self.root is None:
            return np.ones(len(probabilities), dtype=np.float64)
        return np.asarray(self.root.margin(columns), dtype=np.float64)

    def where(self, columns: Mapping[str, sa.ColumnElement[float]]) -> sa.ColumnElement[bool]:
        """The query as a SQL boolean clause over one column per attribute."""
        if self.root is None:
            return sa.true()
        return self.root.holds(columns)  # type: ignore[no-any-return,unused-ignore]

    def score_clause(
        self, columns: Mapping[str, sa.ColumnElement[float]]
    ) -> sa.ColumnElement[float]:
        """:meth:`score` as a SQL expression over one column per attribute."""
        if self.root is None:
            return sa.literal(1.0)
        return self.root.margin(columns)  # type: ignore[no-any-return,unused-ignore]

    def __str__(self) -> str:
        return "" if self.root is None else str(self.root)


class _Parser:
    """Recursive descent over the tokens of one query."""

    def __init__(self, text: str, attributes: Sequence[str] | None, min_prob: float) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.any_name = attributes is None
        self.folded = {name.lower(): name for name in attributes or ()}
        self.min_prob = min_prob
        self.depth = 0
        self.terms = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.current
        self.index += 1
        return token

    def is_keyword(self, word: str) -> bool:
        return self.current.kind == "word" and self.current.text.lower() == word

    def unexpected(self, expected: str) -> QueryError:
        token = self.current
        found = "end of query" if token.kind == "end" else repr(token.text)
        return QueryError(f"expected {expected} at position {token.position}, found {found}")

    def parse(self) -> Node | None:
        if self.current.kind == "end":
            return None
        node = self.expr()
        if self.current.kind != "end":
            raise self.unexpected("'and', 'or' or the end of the query")
        return node

    def expr(self) -> Node:
        operands = [self.term()]
        while self.is_keyword("or"):
            self.advance()
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def term(self) -> Node:
        operands = [self.factor()]
        while self.is_keyword("and"):
            self.advance()
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def factor(self) -> Node:
        if self.is_keyword("not") or (self.current.kind == "paren" and self.current.text == "("):
            return self.nested()
        if self.current.kind != "word" or self.current.text.lower() in KEYWORDS:
            raise self.unexpected("an attribute name, 'not' or '('")
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QueryError(
                f"too many terms: a query holds at most {MAX_TERMS} attribute terms "
                f"(one more at position {self.current.position})"
            )
        name = self.attribute(self.advance())
        if self.current.kind != "op":
            return Threshold(name, ">=", self.min_prob)
        op = self.advance().text
        return Threshold(name, op, self.probability())

    def nested(self) -> Node:
        """``not factor`` or ``( expr )``, one level deeper (at most :data:`MAX_DEPTH`)."""
        opening = self.advance()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(
                f"nested too deeply: a query nests at most {MAX_DEPTH} parentheses and 'not' "
                f"(one more at position {opening.position})"
            )
        if opening.text.lower() == "not":
            node: Node = Not(self.factor())
        else:
            node = self.expr()
            if self.current.kind != "paren" or self.current.text != ")":
                raise self.unexpected("')'")
            self.advance()
        self.depth -= 1
        return node

    def attribute(self, token: Token) -> str:
        name = self.folded.get(token.text.lower())
        if name is not None:
            return name
        if self.any_name:
            return token.text
        close = difflib.get_close_matches(token.text.lower(), list(self.folded), n=1)
        hint = f"; did you mean {self.folded[close[0]]!r}?" if close else ""
        raise QueryError(f"unknown attribute {token.text!r} at position {token.position}{hint}")

    def probability(self) -> float:
        token = self.current
        if token.kind != "word":
            raise self.unexpected("a probability")
        try:
            value = float(token.text)
        except ValueError:
            raise self.unexpected("a probability") from None
        if not 0.0 <= value <= 1.0:
            raise QueryError(
                f"probability {token.text} at position {token.position} is outside [0, 1]"
            )
        self.advance()
        return value


def parse_query(text: str, attributes: Sequence[str] | None, min_prob: float = 0.5) -> Query:
    """Parse ``text`` (grammar in the module docstring) over ``attributes``, a model's names
    (None: any name, checking the syntax only).

    A bare attribute means ``P >= min_prob``. Raises :class:`QueryError` naming the unknown
    attribute (with the closest known name) or the bad token and its position (0-based offset).
    """
    if not 0.0 <= min_prob <= 1.0:
        raise QueryError(f"min_prob must lie in [0, 1], got {min_prob}")
    return Query(text, _Parser(text, attributes, min_prob).parse())
