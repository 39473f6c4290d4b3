#!/usr/bin/env bash
# npm run test:hapi — the integration tests that talk to "the FHIR server", run against a real HAPI FHIR JPA
# server (R4, H2) built from Maven Central artifacts by test/hapi/. HAPI is stopped whatever the outcome.
# Needs Java 17+, Maven 3.8+ and curl: apt-get install -y openjdk-17-jdk-headless maven curl
set -euo pipefail
cd "$(dirname "$0")/.."

INTEGRATION_TESTS=(test/care-plans.test.ts test/sync.test.ts test/faults.test.ts)
export HAPI_PORT="${HAPI_PORT:-8090}"

cleanup() { test/hapi/stop.sh >/dev/null 2>&1 || true; }
trap cleanup EXIT

test/hapi/start.sh
export TEST_FHIR_BASE_URL="http://127.0.0.1:${HAPI_PORT}/fhir"
echo "Running ${#INTEGRATION_TESTS[@]} integration test files against HAPI at ${TEST_FHIR_BASE_URL}"
npx tap --disable-coverage --jobs=1 "${INTEGRATION_TESTS[@]}"
