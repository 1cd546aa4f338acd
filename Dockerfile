# The production image: the same .venv that `make install` builds, run by docker-compose.yml
# as gunicorn (web), a Celery worker and Celery beat.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY Makefile requirements.lock ./
RUN make install PYTHON=python3.11
COPY . .
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput -v0
# Members exports are written here (a volume shared by web and the jobs worker, compose):
# created owned by the user the processes run as, so the volume starts writable.
RUN mkdir -p exports && chown nobody exports
USER nobody
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30"]
