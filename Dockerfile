# nicobot with the WhatsApp (Evolution API) plugin, as docker-compose.yml runs it.
#
#   docker build -t nicobot .
#   docker run --rm -p 127.0.0.1:7070:7070 -e NICOBOT_ADMIN_PASSWORD=... nicobot
#
# The La Fórmula example is baked in as the default project; mount your own project
# (the folder with nicobot.toml) at /app/project to run another bot. Conversations and the
# knowledge index live in /app/data: keep it on a volume.

# ---- build: install nicobot and the plugin into a virtual environment ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src
COPY pyproject.toml README.md LICENSE CHANGELOG.md ./
COPY src ./src
COPY templates ./templates
COPY plugins/nicobot-whatsapp-evolution ./plugins/nicobot-whatsapp-evolution
COPY plugins/nicobot-postgres ./plugins/nicobot-postgres
# The same install as the README's first command (never `pip install nicobot` from the
# registry: that name belongs to an unrelated project).
RUN pip install . ./plugins/nicobot-whatsapp-evolution ./plugins/nicobot-postgres

# ---- runtime: the virtual environment, the default project and a non-root user ----
FROM python:3.11-slim

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NICOBOT_DATA_DIR=/app/data

RUN groupadd --system --gid 10001 nicobot \
    && useradd --system --uid 10001 --gid nicobot --home-dir /home/nicobot --create-home \
       --shell /usr/sbin/nologin nicobot \
    && mkdir -p /app/data \
    && chown nicobot:nicobot /app/data

COPY --from=build /opt/venv /opt/venv
COPY examples/laformula /app/project

USER nicobot
WORKDIR /app
VOLUME ["/app/data"]
EXPOSE 7070

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('NICOBOT_PORT', '7070') + '/healthz', timeout=4)"]

CMD ["nicobot", "serve", "--project", "/app/project", "--host", "0.0.0.0"]
