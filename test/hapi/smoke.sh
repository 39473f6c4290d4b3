#!/usr/bin/env bash
# Smoke test against a running HAPI server (start.sh first). Needs curl only.
# Prints one line per check and ends with "N passed, N failed".
set -uo pipefail
BASE="http://127.0.0.1:${HAPI_PORT:-8090}/fhir"
CT='Content-Type: application/fhir+json'
RUN="smoke$(date +%s%N)"     # unique suffix so reruns on the same server do not collide
PASS=0; FAIL=0
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT

check() { # name expected actual
  if [ "$2" = "$3" ]; then PASS=$((PASS+1)); echo "ok   $1 ($3)"; else FAIL=$((FAIL+1)); echo "FAIL $1: expected '$2', got '$3'"; fi
}
req() { # method url [body] [extra header...] -> writes $TMP/h (headers) $TMP/b (body), prints status
  local m="$1" u="$2" body="${3:-}"; shift 3 || shift $#
  local args=(-s -D "$TMP/h" -o "$TMP/b" -w '%{http_code}' -X "$m" "$u" -H "$CT")
  [ -n "$body" ] && args+=(--data-binary "$body")
  for h in "$@"; do args+=(-H "$h"); done
  curl "${args[@]}"
}
header() { grep -i "^$1:" "$TMP/h" | head -1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
json_field() { tr -d '\n' < "$TMP/b" | grep -o "\"$1\" *: *\"[^\"]*\"" | head -1 | sed 's/.*: *"\(.*\)"/\1/'; }

PAT="pat-$RUN"
check "metadata" 200 "$(req GET "$BASE/metadata")"
check "PUT Patient/$PAT (client id)" 201 "$(req PUT "$BASE/Patient/$PAT" "{\"resourceType\":\"Patient\",\"id\":\"$PAT\"}")"
check "POST Patient" 201 "$(req POST "$BASE/Patient" '{"resourceType":"Patient"}')"
check "POST Patient ETag" 'W/"1"' "$(header ETag)"

TX="{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[
 {\"fullUrl\":\"urn:uuid:00000000-0000-4000-8000-000000000001\",\"resource\":{\"resourceType\":\"Goal\",\"identifier\":[{\"system\":\"urn:smoke\",\"value\":\"g-$RUN\"}],\"lifecycleStatus\":\"active\",\"description\":{\"text\":\"walk\"},\"subject\":{\"reference\":\"Patient/$PAT\"}},
  \"request\":{\"method\":\"POST\",\"url\":\"Goal\",\"ifNoneExist\":\"identifier=urn:smoke|g-$RUN\"}},
 {\"fullUrl\":\"urn:uuid:00000000-0000-4000-8000-000000000002\",\"resource\":{\"resourceType\":\"CarePlan\",\"identifier\":[{\"system\":\"urn:smoke\",\"value\":\"cp-$RUN\"}],\"status\":\"active\",\"intent\":\"plan\",\"subject\":{\"reference\":\"Patient/$PAT\"},\"goal\":[{\"reference\":\"urn:uuid:00000000-0000-4000-8000-000000000001\"}]},
  \"request\":{\"method\":\"POST\",\"url\":\"CarePlan\",\"ifNoneExist\":\"identifier=urn:smoke|cp-$RUN\"}}]}"
check "transaction (create)" 200 "$(req POST "$BASE" "$TX")"
check "transaction entry status" "201 Created" "$(json_field status)"
CP_LOC="$(tr -d '\n' < "$TMP/b" | grep -o '"location" *: *"CarePlan/[^"]*"' | sed 's/.*"\(CarePlan\/[^/]*\)\/.*/\1/')"
check "transaction replay (ifNoneExist matches)" 200 "$(req POST "$BASE" "$TX")"
check "transaction replay entry status" "200 OK" "$(json_field status)"

check "GET $CP_LOC" 200 "$(req GET "$BASE/$CP_LOC")"
check "GET ETag" 'W/"1"' "$(header ETag)"
check "goal urn:uuid rewritten" 1 "$(grep -c '"reference":"Goal/' "$TMP/b")"
check "GET If-None-Match current" 304 "$(req GET "$BASE/$CP_LOC" '' 'If-None-Match: W/"1"')"
BODY="{\"resourceType\":\"CarePlan\",\"id\":\"${CP_LOC#CarePlan/}\",\"status\":\"active\",\"intent\":\"plan\",\"subject\":{\"reference\":\"Patient/$PAT\"}}"
check "PUT If-Match current" 200 "$(req PUT "$BASE/$CP_LOC" "$BODY" 'If-Match: W/"1"')"
check "PUT ETag" 'W/"2"' "$(header ETag)"
check "PUT If-Match stale (HAPI answers 409, not 412)" 409 "$(req PUT "$BASE/$CP_LOC" "$BODY" 'If-Match: W/"1"')"

for i in 1 2 3 4; do req POST "$BASE/CarePlan" "{\"resourceType\":\"CarePlan\",\"status\":\"active\",\"intent\":\"plan\",\"subject\":{\"reference\":\"Patient/$PAT\"}}" >/dev/null; done
check "search _count=2" 200 "$(req GET "$BASE/CarePlan?subject=Patient/$PAT&_count=2")"
check "search has next link" 1 "$(tr -d '\n ' < "$TMP/b" | grep -o '"relation":"next"' | wc -l | tr -d ' ')"
check "search total" 5 "$(tr -d '\n ' < "$TMP/b" | sed -n 's/.*"total":\([0-9]*\).*/\1/p')"
check "instance _history" 200 "$(req GET "$BASE/$CP_LOC/_history")"
check "instance _history entries" 2 "$(tr -d '\n ' < "$TMP/b" | grep -o '"versionId":"[0-9]*"' | wc -l | tr -d ' ')"
check "invalid status -> 400" 400 "$(req POST "$BASE/CarePlan" "{\"resourceType\":\"CarePlan\",\"status\":\"bogus\",\"intent\":\"plan\",\"subject\":{\"reference\":\"Patient/$PAT\"}}")"
check "invalid status body is OperationOutcome" OperationOutcome "$(json_field resourceType)"
check "unknown subject -> 400" 400 "$(req POST "$BASE/CarePlan" '{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/does-not-exist"}}')"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
