#!/usr/bin/env bash
# Stops the HAPI FHIR server started by start.sh (PID from target/hapi.pid).
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PID_FILE="$DIR/target/hapi.pid"

if [ ! -f "$PID_FILE" ]; then
  echo "HAPI FHIR server not running (no $PID_FILE)"
  exit 0
fi
PID="$(cat "$PID_FILE")"
if ! kill -0 "$PID" 2>/dev/null || ! grep -qa 'local.hapi.HapiServerMain' "/proc/$PID/cmdline" 2>/dev/null; then
  echo "HAPI FHIR server not running (stale pid $PID)"
  rm -f "$PID_FILE"
  exit 0
fi
kill "$PID"
for _ in $(seq 1 30); do
  kill -0 "$PID" 2>/dev/null || break
  sleep 1
done
if kill -0 "$PID" 2>/dev/null; then
  echo "HAPI FHIR server (pid $PID) did not stop in 30s; sending SIGKILL"
  kill -9 "$PID" 2>/dev/null || true
fi
rm -f "$PID_FILE"
echo "HAPI FHIR server stopped (pid $PID)"
