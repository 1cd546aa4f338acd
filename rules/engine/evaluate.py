"""Evaluates rules against facts. Computes, never writes: rules.services applies results,
and the admin's previews use the same evaluation without applying anything."""

from dataclasses import dataclass
from typing import Any

from ..models import Rule, RuleCondition
from . import conditions, logic_line
from .facts import FACTS, Need


@dataclass(frozen=True)
class ConditionResult:
    condition: RuleCondition
    actual: Any
    passed: bool

    @property
    def number(self) -> int:
        return self.condition.position

    @property
    def description(self) -> str:
        """For people (the admin's "test on a member"); not needed to evaluate."""
        c = self.condition
        return conditions.describe(c.fact, c.op, c.value, c.days, condition_need(c).event_kind)


@dataclass(frozen=True)
class RuleEvaluation:
    rule: Rule
    matched: bool
    conditions: list[ConditionResult]


def condition_need(condition: RuleCondition) -> Need:
    kind = condition.event_kind.code if condition.event_kind_id else None
    return Need(condition.fact, condition.days, kind)


def fact_needs(rules: list[Rule]) -> set[Need]:
    """Every value the rules' conditions read. Expects prefetched conditions."""
    return {condition_need(c) for rule in rules for c in rule.conditions.all()}


def rule_evaluate(rule: Rule, facts: dict[Need, Any]) -> RuleEvaluation:
    results = []
    for condition in rule.conditions.all():
        actual = facts[condition_need(condition)]
        passed = conditions.evaluate(actual, condition.op, _parsed(condition))
        results.append(ConditionResult(condition=condition, actual=actual, passed=passed))
    outcome = {result.number: result.passed for result in results}
    expression = logic_line.parse(rule.logic) if rule.logic else ("and", sorted(outcome))
    return RuleEvaluation(
        rule=rule, matched=logic_line.evaluate(expression, outcome), conditions=results
    )


def _parsed(condition: RuleCondition) -> Any:
    """The condition's typed value, parsed once per loaded condition (the engine keeps
    loaded rules between evaluations while they are unchanged)."""
    key = (condition.fact, condition.op, condition.value)
    cached = getattr(condition, "_parsed", None)
    if cached is None or cached[0] != key:
        cached = (
            key,
            conditions.parse_value(FACTS[condition.fact].kind, condition.op, condition.value),
        )
        condition._parsed = cached
    return cached[1]
