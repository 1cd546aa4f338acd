from celery import shared_task

from .jobs import import_files_expire, import_job_run, import_jobs_resume

# A million members or ten million orders take minutes (README, Importing); under the
# broker's visibility timeout, so the task is not handed to a second worker meanwhile.
IMPORT_TIME_LIMIT = 3000


@shared_task(time_limit=IMPORT_TIME_LIMIT, soft_time_limit=IMPORT_TIME_LIMIT - 60)
def run_import(job_id: int) -> str:
    return import_job_run(job_id=job_id)


@shared_task
def sweep_imports() -> int:
    import_files_expire()
    return import_jobs_resume()
