"""Evaluates rules against facts. Computes, never writes: rules.services applies results,
and the admin's previews use the same evaluation without applying anything."""

from dataclasses import dataclass
from typing import Any

from . import conditions, logic
from .facts import FACTS, Need
from .models import Rule, RuleCondition


@dataclass(frozen=True)
class ConditionResult:
    number: int
    description: str
    actual: Any
    passed: bool


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
        need = condition_need(condition)
        actual = facts[need]
        parsed = conditions.parse_value(FACTS[condition.fact].kind, condition.op, condition.value)
        results.append(
            ConditionResult(
                number=condition.position,
                description=conditions.describe(
                    condition.fact, condition.op, condition.value, condition.days, need.event_kind
                ),
                actual=actual,
                passed=conditions.evaluate(actual, condition.op, parsed),
            )
        )
    outcome = {result.number: result.passed for result in results}
    expression = logic.parse(rule.logic) if rule.logic else ("and", sorted(outcome))
    return RuleEvaluation(
        rule=rule, matched=logic.evaluate(expression, outcome), conditions=results
    )
