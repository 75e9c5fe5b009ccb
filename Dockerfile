# One image for every PrizMed process: web (uvicorn), worker and beat (celery).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PRIZMED_DATA_DIR=/data
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --home /app prizmed && mkdir -p /data && chown prizmed /data
USER prizmed
EXPOSE 8000
CMD ["uvicorn", "prizmed.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off", "--workers", "4", "--no-access-log", "--ws-max-size", "8388608", "--ws-max-queue", "4", "--http", "core.http_limits:LimitedHttpToolsProtocol"]
