import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.engine import logic_line


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ("1", 1),
        ("1 and 2", ("and", [1, 2])),
        ("1 or 2 and 3", ("or", [1, ("and", [2, 3])])),
        ("(1 or 2) and 3", ("and", [("or", [1, 2]), 3])),
        ("1 AND (2 and 3)", ("and", [1, 2, 3])),
        ("((1))", 1),
    ],
)
def test_parse(text, node):
    assert logic_line.parse(text) == node


@pytest.mark.parametrize("text", ["", "1 and", "(1 or 2", "1 2", "1 xor 2", "and 1", "1)"])
def test_parse_rejects_what_it_cannot_read(text):
    with pytest.raises(logic_line.LogicError):
        logic_line.parse(text)


def test_evaluate():
    node = logic_line.parse("(1 and 2) or 3")
    assert logic_line.evaluate(node, {1: True, 2: True, 3: False})
    assert logic_line.evaluate(node, {1: False, 2: True, 3: True})
    assert not logic_line.evaluate(node, {1: True, 2: False, 3: False})


@pytest.mark.parametrize(
    ("text", "positions", "problem"),
    [
        ("1 and 2", {1, 2}, None),
        ("", {1, 2}, None),
        ("1 and 4", {1, 2, 4}, "Condition(s) 2 are not used"),
        ("1 or 3", {1}, "names condition(s) 3"),
        ("1 or", {1}, "ends too early"),
    ],
)
def test_check_against_the_rules_conditions(text, positions, problem):
    result = logic_line.check(text, positions)
    assert result is None if problem is None else problem in result


expressions = st.recursive(
    st.integers(min_value=1, max_value=9),
    lambda children: st.tuples(
        st.sampled_from(["and", "or"]), st.lists(children, min_size=2, max_size=4)
    ),
    max_leaves=12,
)


@given(expressions, st.dictionaries(st.integers(1, 9), st.booleans(), min_size=9, max_size=9))
def test_text_round_trip_keeps_the_meaning(node, results):
    node = (node[0], list(node[1])) if isinstance(node, tuple) else node
    reparsed = logic_line.parse(logic_line.to_text(node))
    assert logic_line.evaluate(reparsed, results) == logic_line.evaluate(node, results)
    assert logic_line.parse(logic_line.to_text(reparsed)) == reparsed
