"""A small boolean query language over attribute outputs (seed 004's content-based retrieval).

Grammar (keywords case-insensitive, attribute names matched exactly or else case-insensitively)::

    expr   := term ('or' term)*
    term   := factor ('and' factor)*
    factor := 'not' factor | '(' expr ')'
            | NAME [('>' | '<' | '>=' | '<=') NUMBER]      binary or numeric
            | NAME 'between' NUMBER 'and' NUMBER           binary or numeric, bounds included
            | NAME ('=' | '!=') CLASS                      categorical

A binary ``NAME`` alone means ``P(NAME) >= min_prob``, so ``not NAME`` means
``P(NAME) < min_prob``; its ``NUMBER`` is a probability in [0, 1]. A numeric attribute compares
its predicted value in its own unit (``age<30``, ``age between 20 and 30``). A categorical one
tests its predicted (most probable) class: ``race=Asian``, ``race!=White`` (``not race=White``);
a ``CLASS`` is a word or a quoted string (``'Middle Eastern'``), matched exactly or else
case-insensitively, and always stored in the schema's spelling. The empty query matches every
face. A query nests at most
:data:`MAX_DEPTH` parentheses and ``not`` and holds at most :data:`MAX_TERMS` attribute terms, so
that its SQL stays within what SQLite and PostgreSQL parse (SQLite's parser stack, its 127
arguments per function) and the recursive parser within Python's recursion limit.

A parsed :class:`Query` evaluates three ways that agree: :meth:`Query.mask` over a probability
matrix (brute force), :meth:`Query.where` as a SQLAlchemy boolean clause over one column per
attribute, and a *margin* for ranking (:meth:`Query.score`, :meth:`Query.score_clause`): a leaf
``p >= t`` scores ``p - t`` (``t - p`` for ``<``/``<=``), ``not`` negates, ``and`` takes the minimum
and ``or`` the maximum, so a face that satisfies the query scores >= 0, and the higher the score
the further every probability that decides it lies on the satisfying side. A numeric leaf's
margin is in units of its range (``(t - v) / (high - low)`` for ``v < t``), so it mixes with
probabilities; a categorical leaf scores the probability of the predicted class, positive when it
is the class asked for and negative otherwise.
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

from faceattr.data.schema import Attribute, Schema, SchemaError

KEYWORDS = ("and", "or", "not", "between")
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
EQUALITIES = ("=", "!=")
_TOKEN = re.compile(
    r"\s*(?:(?P<op>>=|<=|!=|>|<|=)|(?P<paren>[()])|(?P<word>-?[A-Za-z0-9_.]+)"
    r"|(?P<string>'[^']*'|\"[^\"]*\"))"
)


class QueryError(ValueError):
    """A query that does not parse, or names an attribute the index does not hold."""


@dataclass(frozen=True)
class Token:
    """One lexical token: its ``kind`` (``op``, ``paren``, ``word``, ``string`` (quotes kept) or
    ``end``), text, offset."""

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
"""Attribute name -> its values, numpy arrays or SQLAlchemy column expressions: P(present) of a
binary attribute, the value of a numeric one, and a ``(class names, probability of that class)``
pair for a categorical one."""


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
    """A leaf: ``P(attribute) op value``, or a numeric attribute's ``value op value``, whose
    margin is divided by ``scale`` (its range)."""

    attribute: str
    op: str
    value: float
    scale: float = 1.0

    def holds(self, columns: Columns) -> Any:
        """Whether the leaf holds, for numpy arrays or SQL columns alike."""
        return COMPARISONS[self.op](columns[self.attribute], self.value)

    def margin(self, columns: Columns) -> Any:
        """How far the output lies on the satisfying side of the threshold (in ``scale``s)."""
        p = columns[self.attribute]
        margin = p - self.value if self.op in (">=", ">") else self.value - p
        return margin if self.scale == 1.0 else margin / self.scale

    def __str__(self) -> str:
        return f"{self.attribute}{self.op}{self.value:g}"


@dataclass(frozen=True)
class Category:
    """A leaf: the predicted class of a categorical attribute is ``label``."""

    attribute: str
    label: str

    def _pair(self, columns: Columns) -> tuple[Any, Any]:
        pair = columns[self.attribute]
        if not isinstance(pair, tuple):
            raise QueryError(f"{self.attribute} is not categorical in these columns")
        return pair

    def holds(self, columns: Columns) -> Any:
        """Whether the predicted class is ``label``."""
        return self._pair(columns)[0] == self.label

    def margin(self, columns: Columns) -> Any:
        """The predicted class's probability, negated when it is not ``label``."""
        names, p = self._pair(columns)
        if isinstance(p, np.ndarray):
            return np.where(names == self.label, p, -p)
        return sa.case((names == self.label, p), else_=-p)

    def __str__(self) -> str:
        word = re.fullmatch(r"[A-Za-z0-9_.]+", self.label) is not None
        return f"{self.attribute}={self.label if word else repr(self.label)}"


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


Node = Threshold | Category | Not | And | Or


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
            if isinstance(node, Threshold | Category):
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
        """Which rows of ``probabilities`` (N, K; columns named by ``attributes``; binary or
        numeric attributes) satisfy it."""
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

    def __init__(self, text: str, schema: Schema | None, min_prob: float) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.any_name = schema is None
        self.folded = {a.name.lower(): a for a in schema.attributes} if schema else {}
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
        name = self.advance()
        attribute = self.attribute(name)
        if self.current.kind == "op" and self.current.text in EQUALITIES:
            return self.category(attribute, name)
        if attribute.kind == "categorical":
            raise QueryError(
                f"{attribute.name!r} at position {name.position} is categorical: test its class "
                f"with = or != ({attribute.name}={attribute.classes[0]})"
            )
        if self.is_keyword("between"):
            self.advance()
            low = self.number(attribute)
            if not self.is_keyword("and"):
                raise self.unexpected("'and'")
            self.advance()
            high = self.number(attribute)
            return And(
                (self.threshold(attribute, ">=", low), self.threshold(attribute, "<=", high))
            )
        if self.current.kind == "op":
            op = self.advance().text
            return self.threshold(attribute, op, self.number(attribute))
        if attribute.kind == "numeric":
            raise QueryError(
                f"{attribute.name!r} at position {name.position} is numeric: compare it with a "
                f"number ({attribute.name}<30, {attribute.name} between 20 and 30)"
            )
        return Threshold(attribute.name, ">=", self.min_prob)

    def threshold(self, attribute: Attribute, op: str, value: float) -> Threshold:
        """``attribute op value``; a numeric attribute's margin in units of its range."""
        if attribute.kind == "numeric" and attribute.low is not None and attribute.high is not None:
            return Threshold(attribute.name, op, value, float(attribute.high - attribute.low))
        return Threshold(attribute.name, op, value)

    def category(self, attribute: Attribute, name: Token) -> Node:
        """``NAME = CLASS`` or ``NAME != CLASS`` (the operator is the current token)."""
        op = self.advance().text
        if attribute.kind != "categorical" and not self.any_name:
            raise QueryError(
                f"{op!r} at position {self.tokens[self.index - 1].position} tests a categorical "
                f"attribute's class; {attribute.name} is {attribute.kind}: compare it with "
                "<, <=, >, >= or between"
            )
        token = self.current
        if token.kind == "string":
            text = token.text[1:-1]
        elif token.kind == "word" and token.text.lower() not in KEYWORDS:
            text = token.text
        else:
            raise self.unexpected(f"a class of {attribute.name}")
        self.advance()
        node = Category(attribute.name, self.label(attribute, text, token))
        return node if op == "=" else Not(node)

    def label(self, attribute: Attribute, text: str, token: Token) -> str:
        """The class ``text`` names: exactly, else the one class equal to it ignoring case."""
        if self.any_name or text in attribute.classes:
            return text
        folded = [c for c in attribute.classes if c.lower() == text.lower()]
        if len(folded) == 1:
            return folded[0]
        close = difflib.get_close_matches(text, attribute.classes, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise QueryError(
            f"unknown class {text!r} of {attribute.name} at position {token.position} "
            f"(classes: {', '.join(attribute.classes)}){hint}"
        )

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

    def attribute(self, token: Token) -> Attribute:
        found = self.folded.get(token.text.lower())
        if found is not None:
            return found
        if self.any_name:
            try:
                return Attribute(token.text)  # its kind unknown: any test is allowed
            except SchemaError:
                raise QueryError(
                    f"{token.text!r} at position {token.position} is not an attribute name"
                ) from None
        close = difflib.get_close_matches(token.text.lower(), list(self.folded), n=1)
        hint = f"; did you mean {self.folded[close[0]].name!r}?" if close else ""
        raise QueryError(f"unknown attribute {token.text!r} at position {token.position}{hint}")

    def number(self, attribute: Attribute) -> float:
        """A probability in [0, 1] for a binary attribute, any finite number for a numeric one
        (in its unit)."""
        token = self.current
        expected = "a number" if attribute.kind == "numeric" else "a probability"
        if token.kind != "word":
            raise self.unexpected(expected)
        try:
            value = float(token.text)
        except ValueError:
            raise self.unexpected(expected) from None
        if not np.isfinite(value):
            raise self.unexpected(expected)
        if attribute.kind == "binary" and not self.any_name and not 0.0 <= value <= 1.0:
            raise QueryError(
                f"probability {token.text} at position {token.position} is outside [0, 1]"
            )
        self.advance()
        return value


def parse_query(
    text: str, attributes: Sequence[str] | Schema | None, min_prob: float = 0.5
) -> Query:
    """Parse ``text`` (grammar in the module docstring) over ``attributes``: a model's schema,
    or its names (all binary), or None (any name, checking the syntax only).

    A bare binary attribute means ``P >= min_prob``. Raises :class:`QueryError` naming the
    unknown attribute (with the closest known name) or class, the test that does not fit the
    attribute's kind, or the bad token, and its position (0-based offset).
    """
    if not 0.0 <= min_prob <= 1.0:
        raise QueryError(f"min_prob must lie in [0, 1], got {min_prob}")
    schema = None
    if attributes is not None:
        schema = attributes if isinstance(attributes, Schema) else Schema.binary(attributes)
    return Query(text, _Parser(text, schema, min_prob).parse())
