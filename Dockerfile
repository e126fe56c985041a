# backupbot: Slack bot + daily scheduler. Mount the config at /data/backupbot.yml;
# a relative storage.path (e.g. "backups.db") then lands in the /data volume.
FROM python:3.12-slim

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin backupbot \
 && mkdir /data && chown backupbot:backupbot /data

WORKDIR /src
# Dependencies first, in a layer of their own: the list is read from pyproject.toml alone (the build
# backend, then [project].dependencies), so this layer is rebuilt when pyproject.toml changes and
# reused on every code change.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); \
print('\n'.join(p['build-system']['requires'] + p['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt
# Then the sources, installed without touching the dependencies (or the network).
COPY README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && rm -rf /src

USER backupbot
WORKDIR /data
VOLUME ["/data"]
# 3000: Slack's requests (HTTP mode). The admin listener (liveness, readiness, /metrics) stays on
# 127.0.0.1:9090 inside the container; add `--admin-host 0.0.0.0` and publish 9090 to scrape it.
EXPOSE 3000
# Liveness, not readiness: a Slack outage or a stuck outbox is not fixed by a restart.
HEALTHCHECK --interval=60s --timeout=5s --start-period=60s \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9090/healthz/live', timeout=4).status != 200)"]
CMD ["backupbot", "serve"]
