# One image for the sweep (driver), the Ray head, the Ray workers and the MLflow server:
# the same Python, Ray and hpo everywhere, as Ray requires of a cluster.
FROM python:3.11.7-slim-bookworm

# Ray's object store lives in /dev/shm; the compose file gives the containers enough of it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    RAY_USAGE_STATS_ENABLED=0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY hpo hpo
COPY models models
# psycopg2-binary: the MLflow server's PostgreSQL backend; boto3: its S3 artifact store;
# ray[default]: the Ray dashboard the head publishes (the same Ray as hpo's); mlflow[auth]:
# the server's users and permissions (its basic-auth app).
RUN pip install . "ray[default]" "mlflow[auth]" "psycopg2-binary==2.9.10" "boto3==1.35.99"
COPY experiments experiments

CMD ["hpo", "--help"]
