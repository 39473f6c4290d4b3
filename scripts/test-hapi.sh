#!/usr/bin/env bash
# npm run test:hapi — the integration tests that talk to "the FHIR server", run against the embedded FHIR server
# and then against a real HAPI FHIR JPA server (R4, H2) built from Maven Central artifacts by test/hapi/; the two
# runs must count the same number of tests. HAPI is stopped whatever the outcome.
# Needs Java 17+, Maven 3.8+ and curl: apt-get install -y openjdk-17-jdk-headless maven curl
set -euo pipefail
cd "$(dirname "$0")/.."

INTEGRATION_TESTS=(test/http/routes/care-plans/basics.test.ts test/http/routes/care-plans/sync.test.ts test/http/routes/care-plans/faults.test.ts test/http/routes/care-plans/isolation.test.ts)
# The webhook delivery tests (short backoff settings, bounded waits): signed deliveries, retries, 410, replay, DELETE,
# paging beyond one page of history and of Subscriptions, the lease across two instances and a SIGKILL, and the
# proof that the FHIR server itself delivers nothing (HAPI stores the Subscriptions without acting on them).
INTEGRATION_TESTS+=(test/http/routes/subscriptions/webhooks.test.ts test/http/routes/subscriptions/webhooks-paging.test.ts test/http/routes/subscriptions/webhooks-lease.test.ts test/http/routes/subscriptions/webhooks-instances.test.ts)
export HAPI_PORT="${HAPI_PORT:-8090}"
mkdir -p test-output

cleanup() { test/hapi/stop.sh >/dev/null 2>&1 || true; }
trap cleanup EXIT

count_tests() { sed -n 's/^# { total: \([0-9]*\).*/\1/p' "$1" | tail -1; }

echo "== the integration tests against the embedded FHIR server"
npx tap --disable-coverage --jobs=1 "${INTEGRATION_TESTS[@]}" | tee test-output/integration-embedded.tap

echo "== the same tests against HAPI FHIR"
test/hapi/start.sh
export TEST_FHIR_BASE_URL="http://127.0.0.1:${HAPI_PORT}/fhir"
npx tap --disable-coverage --jobs=1 "${INTEGRATION_TESTS[@]}" | tee test-output/integration-hapi.tap

embedded="$(count_tests test-output/integration-embedded.tap)"
hapi="$(count_tests test-output/integration-hapi.tap)"
echo "tests run: embedded FHIR server ${embedded}, HAPI FHIR ${hapi}"
if [ -z "$embedded" ] || [ "$embedded" != "$hapi" ]; then
  echo "test:hapi: the HAPI run did not count the same tests as the embedded run" >&2
  exit 1
fi
