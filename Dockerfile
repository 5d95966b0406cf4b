FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor monitor
COPY storage storage
COPY tasks tasks
COPY cli cli
COPY synthetic synthetic
COPY feed feed
RUN pip install --no-cache-dir . && useradd --create-home imn
USER imn
CMD ["imn-monitor", "--help"]
