from celery import shared_task

from .summaries import report_summary_send


@shared_task
def send_summary(kind: str) -> bool:
    return report_summary_send(kind=kind)
