#!/usr/bin/env bash
# Start or stop a throw-away single-node Elasticsearch on 127.0.0.1 for tests and benchmarks.
#   scripts/elasticsearch.sh start RUN_DIR   -> prints the URL on stdout once HTTP answers
#   scripts/elasticsearch.sh stop RUN_DIR
# The install comes from scripts/provision/elasticsearch.sh (run it first; exit 3 if missing).
# RUN_DIR holds this instance's config, data, logs and pid; delete it after `stop`.
set -euo pipefail

ES_VERSION=8.12.2
# As root the install must be readable by the unprivileged user, which a 0700 /root is not.
if [ "$(id -u)" = 0 ]; then DEFAULT_CACHE=/var/cache/stacklens/elasticsearch
else DEFAULT_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/stacklens/elasticsearch; fi
CACHE=${STACKLENS_ES_CACHE:-$DEFAULT_CACHE}
ES_HOME="$CACHE/elasticsearch-$ES_VERSION"
ES_USER=${STACKLENS_ES_USER:-stacklens-es}
HEAP=${STACKLENS_ES_HEAP:-512m}
START_TIMEOUT=${STACKLENS_ES_START_TIMEOUT:-120}

log() { echo "elasticsearch.sh: $*" >&2; }
cmd=${1:-}; RUN_DIR=${2:-}
[ -n "$cmd" ] && [ -n "$RUN_DIR" ] || { log "usage: $0 start|stop RUN_DIR"; exit 2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

as_es_user() {
  # Elasticsearch refuses to run as root; as any other user it runs as that user.
  if [ "$(id -u)" = 0 ]; then runuser -u "$ES_USER" -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  if [ ! -x "$ES_HOME/bin/elasticsearch" ] || [ ! -f "$ES_HOME/.stacklens-verified" ]; then
    log "Elasticsearch is not provisioned: run \`bash scripts/provision/elasticsearch.sh\`"
    exit 3
  fi
  mkdir -p "$RUN_DIR"/{data,logs,tmp}
  # A private copy of the config: the install stays read-only and shared between runs.
  rm -rf "$RUN_DIR/config" && cp -r "$ES_HOME/config" "$RUN_DIR/config"
  # jvm.options names logs/ and data/ relative to the install, which the user cannot write.
  sed -i -e "s|logs/|$RUN_DIR/logs/|g" -e "s|HeapDumpPath=data|HeapDumpPath=$RUN_DIR/data|" \
    "$RUN_DIR/config/jvm.options"
  port=$(free_port)
  [ "$(id -u)" = 0 ] && chown -R "$ES_USER" "$RUN_DIR"
  as_es_user env ES_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP" ES_TMPDIR="$RUN_DIR/tmp" ES_PATH_CONF="$RUN_DIR/config" \
    "$ES_HOME/bin/elasticsearch" -d -p "$RUN_DIR/es.pid" \
    -Ediscovery.type=single-node -Expack.security.enabled=false -Expack.ml.enabled=false \
    -Eingest.geoip.downloader.enabled=false -Enetwork.host=127.0.0.1 -Ehttp.port="$port" \
    -Etransport.port=0 -Epath.data="$RUN_DIR/data" -Epath.logs="$RUN_DIR/logs" \
    -Ecluster.routing.allocation.disk.threshold_enabled=false -Eaction.destructive_requires_name=false \
    >"$RUN_DIR/logs/stdout.log" 2>&1
  url="http://127.0.0.1:$port"
  deadline=$(( $(date +%s) + START_TIMEOUT ))
  until curl -sf "$url/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "no answer from $url after ${START_TIMEOUT}s; last log lines:"
      tail -n 20 "$RUN_DIR"/logs/*.log >&2 || true
      "$0" stop "$RUN_DIR" || true
      exit 1
    fi
    sleep 0.5
  done
  echo "$url"
  ;;
stop)
  [ -f "$RUN_DIR/es.pid" ] || exit 0
  pid=$(cat "$RUN_DIR/es.pid")
  kill "$pid" 2>/dev/null || exit 0
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  ;;
*) log "unknown command $cmd (start|stop)"; exit 2 ;;
esac
