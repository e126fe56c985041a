# backupbot: Slack bot + daily scheduler. Mount the config at /data/backupbot.yml;
# a relative storage.path (e.g. "backups.db") then lands in the /data volume.
FROM python:3.12-slim

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin backupbot \
 && mkdir /data && chown backupbot:backupbot /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN pip install --no-cache-dir . && rm -rf /src

USER backupbot
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=60s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"
CMD ["backupbot", "serve"]
