# One image for every Atelier worker. TORCH selects the build: CPU by default; on a GPU base image
# use the CUDA build for the scoring worker.
FROM python:3.11-slim
ARG TORCH="torch==2.13.0"
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 ATELIER_DATA_DIR=/data
WORKDIR /app
RUN pip install --no-cache-dir "$TORCH"
COPY pyproject.toml README.md ./
COPY models ./models
COPY kit ./kit
COPY activities ./activities
COPY workflows ./workflows
COPY workers ./workers
COPY starter ./starter
RUN pip install --no-cache-dir .
VOLUME /data
CMD ["python", "-m", "workers"]
