# One image for every PrizMed process: web (uvicorn), worker and beat (celery).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PRIZMED_DATA_DIR=/data
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The dashboard's viewer (OHIF's prebuilt files), as `make viewer` installs it.
RUN apt-get update -q && apt-get install -y -q --no-install-recommends make nodejs npm \
    && make viewer && apt-get purge -y nodejs npm && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /root/.npm
RUN useradd --system --home /app prizmed && mkdir -p /data && chown prizmed /data
USER prizmed
EXPOSE 8000
CMD ["uvicorn", "prizmed.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off", "--workers", "4", "--no-access-log", "--ws-max-size", "8388608", "--ws-max-queue", "4"]
