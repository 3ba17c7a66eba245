# The service image for docker-compose.yml: worker, API, gateway simulator and one-shot chores.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN mkdir -p billing config store activities workflows api gateway_sim payments devstack observability \
    && pip install . \
    && pip uninstall -y billing-sagas

COPY billing ./billing
COPY config ./config
COPY store ./store
COPY migrations ./migrations
COPY activities ./activities
COPY workflows ./workflows
COPY api ./api
COPY gateway_sim ./gateway_sim
COPY payments ./payments
COPY devstack ./devstack
COPY observability ./observability
COPY worker.py ./
# Editable, so store.migrate finds /app/migrations beside the packages.
RUN pip install --no-deps -e .

RUN useradd --system --uid 10001 --home /app billing \
    && mkdir -p /data && chown billing /data
USER billing

EXPOSE 8000 8001 9464
CMD ["python", "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
