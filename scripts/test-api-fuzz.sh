#!/usr/bin/env bash
# npm run test:api-fuzz — contract fuzzing of the running service with schemathesis (from PyPI, in a virtual
# environment this script creates in .venv-fuzz/). Builds the service, starts it on the embedded FHIR server and
# runs schemathesis against its /openapi.json twice: with AUTH_MODE=none, and with AUTH_MODE=jwt and a real
# token (system/CarePlan.cruds system/Subscription.cruds) from a loopback JWKS (test/api-fuzz/issuer.mjs). Every schemathesis check is on
# (test/api-fuzz/schemathesis.toml; known false positives are handled in test/api-fuzz/hooks.py, each with its
# reason). Fails on any failing check in either run. Everything it starts is stopped whatever the outcome.
# Needs Python 3.9+ with venv: apt-get install -y python3 python3-venv
#
# Knobs: API_FUZZ_MAX_EXAMPLES (cases per operation in the fuzzing and stateful phases, default from the config),
# API_FUZZ_PHASES_NONE and API_FUZZ_PHASES_JWT (default examples,coverage,fuzzing; stateful is a fourth), API_FUZZ_TIMEOUT_S (hard limit of one schemathesis run, default 600),
# API_FUZZ_SEED (reproduce a run), API_FUZZ_RUNS (default "none jwt").
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=.venv-fuzz
OUT=test-output/api-fuzz
# Both runs: the examples of the document, the coverage phase (boundary values of every parameter and property;
# split by operation between the two runs, see test/api-fuzz/auth-*.toml) and random fuzzing. The stateful phase
# (chains of calls along inferred links) is optional: add ",stateful" to turn it on.
PHASES_NONE="${API_FUZZ_PHASES_NONE:-examples,coverage,fuzzing}"
PHASES_JWT="${API_FUZZ_PHASES_JWT:-examples,coverage,fuzzing}"
RUN_TIMEOUT_S="${API_FUZZ_TIMEOUT_S:-600}"
RUNS="${API_FUZZ_RUNS:-none jwt}"

install_hint='apt-get update && apt-get install -y python3 python3-venv'
if ! command -v python3 >/dev/null; then
  echo "test:api-fuzz: python3 is missing; install it with: ${install_hint}" >&2
  exit 1
fi
if ! python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)'; then
  echo "test:api-fuzz: $(python3 --version) is too old for schemathesis (needs 3.9+): ${install_hint}" >&2
  exit 1
fi

echo "== schemathesis ${SCHEMATHESIS_VERSION} in ${VENV}/"
if ! "${VENV}/bin/st" --version 2>/dev/null | grep -qx "st, version ${SCHEMATHESIS_VERSION}"; then
  rm -rf "${VENV}"
  if ! python3 -m venv "${VENV}"; then
    echo "test:api-fuzz: python3 cannot create a virtual environment; install venv with: ${install_hint}" >&2
    exit 1
  fi
  "${VENV}/bin/pip" install --quiet --disable-pip-version-check "schemathesis==${SCHEMATHESIS_VERSION}"
fi
"${VENV}/bin/st" --version

echo "== npm run build"
npm run build --silent

rm -rf "${OUT}"
mkdir -p "${OUT}"

pids=()
cleanup() {
  local pid
  # The fuzz runs are subshells: stop their children (timeout, schemathesis) too.
  for pid in "${pids[@]}"; do pkill -TERM -P "${pid}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "${pid}" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  node -e "const s = require('node:net').createServer(); s.listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })"
}

# wait_for URL SECONDS PID: until URL answers 200; fails when PID exits first or time runs out.
wait_for() {
  local url="$1" seconds="$2" pid="$3"
  node -e "
    const [url, seconds, pid] = process.argv.slice(1);
    const end = Date.now() + Number(seconds) * 1000;
    const alive = () => { try { process.kill(Number(pid), 0); return true; } catch { return false; } };
    (async () => {
      while (Date.now() < end && alive()) {
        try { if ((await fetch(url)).status === 200) return; } catch {}
        await new Promise((r) => setTimeout(r, 200));
      }
      console.error('test:api-fuzz: ' + url + (alive() ? ' did not answer 200 in time' : ': the process exited'));
      process.exit(1);
    })();
  " "${url}" "${seconds}" "${pid}"
}

# run_service NAME PORT ENV...: the built service on PORT, on its own embedded FHIR server, in the background.
# WEBHOOK_ALLOWED_HOSTS is empty: the fuzzer's subscriptions may not point at loopback (the embedded default), so
# it cannot make the service POST to anything on this machine (the SSRF rules refuse them with 422).
run_service() {
  local name="$1" port="$2"
  shift 2
  env PORT="${port}" HOST=127.0.0.1 LOG_LEVEL=warn RATE_LIMIT_MAX=0 WEBHOOK_ALLOWED_HOSTS= "$@" \
    node dist/src/server.js >"${OUT}/service-${name}.log" 2>&1 &
}

# fuzz NAME PORT PHASES ARGS...: schemathesis against the service on PORT; its exit code. Output in ${OUT}/NAME.txt.
fuzz() {
  local name="$1" port="$2" phases="$3"
  shift 3
  local extra=()
  [ -n "${API_FUZZ_SEED:-}" ] && extra+=(--seed "${API_FUZZ_SEED}")
  [ -n "${API_FUZZ_MAX_EXAMPLES:-}" ] && extra+=(--max-examples "${API_FUZZ_MAX_EXAMPLES}")
  local started=$SECONDS status=0
  cat test/api-fuzz/schemathesis.toml "test/api-fuzz/${name}.toml" >"${OUT}/${name}.toml"
  {
    echo "== schemathesis, ${name}: http://127.0.0.1:${port}/openapi.json (phases ${phases})"
    API_FUZZ_BASE_URL="http://127.0.0.1:${port}" SCHEMATHESIS_HOOKS="$PWD/test/api-fuzz/hooks.py" \
      timeout --signal=INT --kill-after=30 "${RUN_TIMEOUT_S}" \
      "${VENV}/bin/st" --no-color --config-file "${OUT}/${name}.toml" run \
      "http://127.0.0.1:${port}/openapi.json" \
      --phases "${phases}" --generation-database none \
      --report junit,ndjson --report-dir "${OUT}/${name}" \
      "${extra[@]}" "$@" || status=$?
    [ "${status}" -eq 124 ] && echo "test:api-fuzz: the ${name} run hit its ${RUN_TIMEOUT_S} s limit"
    echo "== schemathesis, ${name}: exit ${status} after $((SECONDS - started)) s"
  } >"${OUT}/${name}.txt" 2>&1
  return "${status}"
}

# field NAME: one field of what the issuer wrote.
field() {
  node -e "console.log(JSON.parse(require('node:fs').readFileSync(process.argv[1], 'utf8'))[process.argv[2]])" \
    "${OUT}/issuer.json" "$1"
}

# The runs go side by side, each with its own service: schemathesis is CPU-bound in one Python thread, so each
# run gets one of the machine's cores.
total_started=$SECONDS
names=()
fuzz_pids=()
for run in ${RUNS}; do
  case "${run}" in
    none)
      port="$(free_port)"
      run_service auth-none "${port}" AUTH_MODE=none
      pids+=("$!")
      wait_for "http://127.0.0.1:${port}/health/ready" 60 "$!" || { tail -20 "${OUT}/service-auth-none.log" >&2; exit 1; }
      fuzz auth-none "${port}" "${PHASES_NONE}" &
      ;;
    jwt)
      node test/api-fuzz/issuer.mjs >"${OUT}/issuer.json" 2>"${OUT}/issuer.log" &
      pids+=("$!")
      for _ in $(seq 1 100); do [ -s "${OUT}/issuer.json" ] && break; sleep 0.1; done
      authorization="Bearer $(field token)"
      port="$(free_port)"
      run_service auth-jwt "${port}" AUTH_MODE=jwt AUTH_JWKS_URL="$(field jwksUrl)" AUTH_ISSUER="$(field issuer)" \
        AUTH_AUDIENCE="$(field audience)"
      pids+=("$!")
      wait_for "http://127.0.0.1:${port}/health/ready" 60 "$!" || { tail -20 "${OUT}/service-auth-jwt.log" >&2; exit 1; }
      API_FUZZ_AUTHORIZATION="${authorization}" fuzz auth-jwt "${port}" "${PHASES_JWT}" -H "Authorization: ${authorization}" &
      ;;
    *)
      echo "test:api-fuzz: unknown run '${run}' in API_FUZZ_RUNS (none, jwt)" >&2
      exit 2
      ;;
  esac
  pids+=("$!")
  fuzz_pids+=("$!")
  names+=("auth-${run}")
done

failed=()
for i in "${!fuzz_pids[@]}"; do
  status=0
  wait "${fuzz_pids[$i]}" || status=$?
  cat "${OUT}/${names[$i]}.txt"
  [ "${status}" -eq 0 ] || failed+=("${names[$i]}")
done

echo "test:api-fuzz: runs ${names[*]}; $((SECONDS - total_started)) s; reports in ${OUT}/"
if [ ${#failed[@]} -gt 0 ]; then
  echo "test:api-fuzz: schemathesis found failures in ${failed[*]} (see above and ${OUT}/)" >&2
  exit 1
fi
echo "test:api-fuzz: no failing check"
