"""The query language: precedence, parentheses, thresholds, case, errors, and the three evaluations
(numpy mask, margin, SQL) agreeing."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from faceattr.attributes import ATTRIBUTES
from faceattr.retrieval.query import And, Not, Or, QueryError, Threshold, parse_query


def test_and_binds_tighter_than_or_and_not_tightest() -> None:
    query = parse_query("not Male and Smiling or Eyeglasses", attributes=ATTRIBUTES)
    assert query.root == Or(
        (
            And((Not(Threshold("Male", ">=", 0.5)), Threshold("Smiling", ">=", 0.5))),
            Threshold("Eyeglasses", ">=", 0.5),
        )
    )


def test_parentheses_override_precedence() -> None:
    query = parse_query(
        "not (Male and (Smiling or Eyeglasses))", min_prob=0.7, attributes=ATTRIBUTES
    )
    assert query.root == Not(
        And(
            (
                Threshold("Male", ">=", 0.7),
                Or((Threshold("Smiling", ">=", 0.7), Threshold("Eyeglasses", ">=", 0.7))),
            )
        )
    )


def test_thresholds_and_case() -> None:
    query = parse_query("smiling>0.9 AND Young <= .3 Or NOT wearing_hat<0.2", attributes=ATTRIBUTES)
    assert query.root == Or(
        (
            And((Threshold("Smiling", ">", 0.9), Threshold("Young", "<=", 0.3))),
            Not(Threshold("Wearing_Hat", "<", 0.2)),
        )
    )
    assert query.attributes == ("Smiling", "Young", "Wearing_Hat")
    assert parse_query("5_o_clock_shadow>=1", attributes=ATTRIBUTES).root == Threshold(
        "5_o_Clock_Shadow", ">=", 1.0
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Eyeglases and Male",
            "unknown attribute 'Eyeglases' at position 0; did you mean 'Eyeglasses'?",
        ),
        ("Male and Wearing_Hatt", "unknown attribute 'Wearing_Hatt' at position 9"),
        ("Male and", "expected an attribute name, 'not' or '(' at position 8, found end of query"),
        ("Male Smiling", "at position 5, found 'Smiling'"),
        ("(Male or Young", "expected ')' at position 14"),
        ("Male)", "at position 4, found ')'"),
        ("Smiling > high", "expected a probability at position 10, found 'high'"),
        ("Smiling > 1.5", "probability 1.5 at position 10 is outside [0, 1]"),
        ("Smiling = 0.5", "'=' at position 8 tests a categorical attribute's class; Smiling is"),
        ("Smiling ~ 0.5", "unexpected character '~' at position 8"),
        ("or Male", "at position 0, found 'or'"),
    ],
)
def test_errors_name_the_token_and_its_position(text: str, message: str) -> None:
    with pytest.raises(QueryError) as error:
        parse_query(text, attributes=ATTRIBUTES)
    assert message in str(error.value)


def test_attributes_of_the_model_only() -> None:
    with pytest.raises(QueryError, match="unknown attribute 'Male'"):
        parse_query("Male", attributes=("Smiling", "Young"))
    query = parse_query("Male", attributes=ATTRIBUTES)
    with pytest.raises(QueryError, match="lacks: Male"):
        query.mask(np.zeros((2, 2)), ("Smiling", "Young"))


def test_mask_score_and_sql_agree() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.random((300, len(ATTRIBUTES)))
    engine = sa.create_engine("sqlite://")
    metadata = sa.MetaData()
    table = sa.Table(
        "faces",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        *(sa.Column(name, sa.Double) for name in ATTRIBUTES),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        rows = [
            {"id": i, **dict(zip(ATTRIBUTES, row, strict=True))}
            for i, row in enumerate(probabilities.tolist())
        ]
        connection.execute(table.insert(), rows)
    columns = {name: table.c[name] for name in ATTRIBUTES}
    for text in [
        "Male",
        "not Male and Smiling>0.3",
        "(Young or Bald<0.1) and not Eyeglasses",
        "Male or Smiling or Young>=0.8",
        "",
    ]:
        query = parse_query(text, attributes=ATTRIBUTES)
        mask = query.mask(probabilities, ATTRIBUTES)
        score = query.score(probabilities, ATTRIBUTES)
        assert 0 < mask.sum() < len(mask) or text == ""
        assert np.all(score[mask] >= 0) and np.all(score[~mask] <= 0)
        statement = sa.select(table.c.id, query.score_clause(columns)).where(query.where(columns))
        with engine.connect() as connection:
            found = {face_id: score for face_id, score in connection.execute(statement)}
        assert sorted(found) == np.flatnonzero(mask).tolist()
        np.testing.assert_allclose([found[i] for i in sorted(found)], score[mask], atol=1e-12)


def test_margin_is_min_over_and_max_over_or() -> None:
    probabilities = np.zeros((1, len(ATTRIBUTES)))
    probabilities[0, ATTRIBUTES.index("Male")] = 0.9
    probabilities[0, ATTRIBUTES.index("Smiling")] = 0.6
    assert parse_query("Male and Smiling", attributes=ATTRIBUTES).score(probabilities, ATTRIBUTES)[
        0
    ] == pytest.approx(0.1)
    assert parse_query("Male or Smiling", attributes=ATTRIBUTES).score(probabilities, ATTRIBUTES)[
        0
    ] == pytest.approx(0.4)
    assert parse_query("not Male", attributes=ATTRIBUTES).score(probabilities, ATTRIBUTES)[
        0
    ] == pytest.approx(-0.4)
    assert parse_query("Smiling<0.8", attributes=ATTRIBUTES).score(probabilities, ATTRIBUTES)[
        0
    ] == pytest.approx(0.2)
