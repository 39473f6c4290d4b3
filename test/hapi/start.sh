#!/usr/bin/env bash
# Builds (if needed) and starts a real HAPI FHIR JPA server (R4, in-memory H2) in the background.
#   HAPI_PORT            port on 127.0.0.1 (default 8090); base URL http://127.0.0.1:$HAPI_PORT/fhir
#   HAPI_START_TIMEOUT   seconds to wait for /fhir/metadata to answer 200 (default 300)
#   HAPI_JAVA_OPTS       JVM options (default below)
#   HAPI_CLIENT_ID_STRATEGY  ALPHANUMERIC (HAPI default) or ANY
# Leaves the server running; PID in target/hapi.pid, log in target/hapi.log. Stop with stop.sh.
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET="$DIR/target"
PID_FILE="$TARGET/hapi.pid"
LOG_FILE="$TARGET/hapi.log"
CP_FILE="$TARGET/classpath.txt"
STAMP="$TARGET/.build-stamp"
export HAPI_PORT="${HAPI_PORT:-8090}"
TIMEOUT="${HAPI_START_TIMEOUT:-300}"
JAVA_OPTS="${HAPI_JAVA_OPTS:--Xms256m -Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss1m}"
BASE="http://127.0.0.1:${HAPI_PORT}/fhir"

die() { echo "hapi/start.sh: $*" >&2; exit 1; }

for tool in java mvn; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found. Install Java 17+ and Maven: apt-get install -y openjdk-17-jdk-headless maven"
done
command -v curl >/dev/null 2>&1 || die "'curl' not found. Install it: apt-get install -y curl"
JAVA_MAJOR="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')"
[ -n "$JAVA_MAJOR" ] && [ "$JAVA_MAJOR" -ge 17 ] || die "Java 17+ needed (found '${JAVA_MAJOR:-?}'): apt-get install -y openjdk-17-jdk-headless maven"

version_of_running() {
  curl -fsS --max-time 10 "$BASE/metadata" 2>/dev/null \
    | tr -d '\n' | sed -n 's/.*"software"[^}]*"version" *: *"\([^"]*\)".*/\1/p'
}

# Already running (started by us)? Then report and leave it alone.
if [ -f "$PID_FILE" ]; then
  OLD_PID="$(cat "$PID_FILE")"
  if kill -0 "$OLD_PID" 2>/dev/null && grep -qa 'local.hapi.HapiServerMain' "/proc/$OLD_PID/cmdline" 2>/dev/null; then
    V="$(version_of_running || true)"
    if [ -n "$V" ]; then
      echo "HAPI FHIR server already running (pid $OLD_PID) at $BASE"
      echo "HAPI FHIR version: $V"
      exit 0
    fi
    die "a HAPI server (pid $OLD_PID) is running but $BASE/metadata does not answer; run stop.sh first"
  fi
  rm -f "$PID_FILE"
fi

if curl -s -o /dev/null --max-time 3 "http://127.0.0.1:${HAPI_PORT}/"; then
  die "port $HAPI_PORT on 127.0.0.1 is already in use by another process; set HAPI_PORT"
fi

# Build when sources changed or a dependency jar went missing from ~/.m2.
needs_build() {
  [ -f "$STAMP" ] && [ -f "$CP_FILE" ] || return 0
  [ -n "$(find "$DIR/pom.xml" "$DIR/src" -newer "$STAMP" -print -quit)" ] && return 0
  local IFS=':' jar
  for jar in $(cat "$CP_FILE"); do [ -f "$jar" ] || return 0; done
  return 1
}
if needs_build; then
  echo "Building HAPI test server (first build downloads ~350 MB of Maven artifacts)..."
  T0=$(date +%s)
  mkdir -p "$TARGET"
  if ! mvn -B -Dstyle.color=never -f "$DIR/pom.xml" compile >"$TARGET/build.log" 2>&1; then
    tail -n 60 "$TARGET/build.log" >&2
    die "maven build failed (full output: $TARGET/build.log)"
  fi
  touch "$STAMP"
  echo "Build done in $(( $(date +%s) - T0 ))s"
fi

mkdir -p "$TARGET"
cd "$DIR"
# shellcheck disable=SC2086
setsid nohup java $JAVA_OPTS -cp "$TARGET/classes:$(cat "$CP_FILE")" local.hapi.HapiServerMain \
  >"$LOG_FILE" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PID_FILE"
echo "Starting HAPI FHIR (pid $PID) on $BASE, log: $LOG_FILE"

T0=$(date +%s)
while :; do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "HAPI server exited during startup; last log lines:" >&2
    tail -n 40 "$LOG_FILE" >&2 || true
    rm -f "$PID_FILE"
    exit 1
  fi
  CODE="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BASE/metadata" || true)"
  [ "$CODE" = "200" ] && break
  if [ $(( $(date +%s) - T0 )) -ge "$TIMEOUT" ]; then
    echo "HAPI server did not answer 200 on $BASE/metadata within ${TIMEOUT}s (last: $CODE); log tail:" >&2
    tail -n 40 "$LOG_FILE" >&2 || true
    kill "$PID" 2>/dev/null || true
    rm -f "$PID_FILE"
    exit 1
  fi
  sleep 1
done
echo "HAPI FHIR server ready at $BASE after $(( $(date +%s) - T0 ))s"
echo "HAPI FHIR version: $(version_of_running)"
