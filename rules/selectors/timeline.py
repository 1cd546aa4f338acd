from core.models import newest

from ..models import RuleFiring


def firing_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    firings = RuleFiring.objects.filter(member_id=member_id).select_related("rule", "order")
    return [
        {
            "type": "rule_fired",
            "at": firing.fired_at,
            "rule": firing.reference,
            "trigger": firing.trigger,
            "order": firing.order.external_id if firing.order else None,
            "facts": firing.facts,
        }
        for firing in newest(firings, at="fired_at", before=before, limit=limit)
    ]
