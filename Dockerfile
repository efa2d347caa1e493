FROM python:3.11-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY service service
COPY handlers handlers
COPY events events
COPY projections projections
COPY migrations migrations
COPY examples examples
RUN uv sync --frozen --no-dev
ENV PATH="/app/.venv/bin:$PATH"
CMD ["sample-ledger", "run"]
