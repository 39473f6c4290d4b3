#!/usr/bin/env bash
# npm run test:conformance — everything the service writes as FHIR, checked by the HL7 reference validator
# (HAPI FHIR 8.8.0 FhirInstanceValidator) against the R4 core definitions, the official US Core 6.1.0 and 7.0.0
# packages, hl7.terminology.r4, the project's own definitions and the PCO / SDOHCC code systems
# (test/conformance/README.md). Fails (never skips) when Java 17+ or Maven is missing.
#   CONFORMANCE_PLANS    generated plans in the corpus (default 200)
#   CONFORMANCE_PLANS_7  generated plans in the corpus produced with US_CORE_VERSION=7.0.0 (default 60)
# With --write-snapshots (npm run conformance:snapshots) it only writes the snapshots of the project's
# StructureDefinitions (schemas/fhir), generated from their differentials by the validator's chain, and stops.
#   CONFORMANCE_THREADS  validator threads (default: the number of cores)
#   CONFORMANCE_JAVA_OPTS JVM options (default below)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=test/conformance
OUT=test-output/conformance
INSTALL="apt-get install -y openjdk-17-jdk-headless maven"

die() { echo "test:conformance: $*" >&2; exit 1; }
for tool in java mvn; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found. Install Java 17+ and Maven: $INSTALL"
done
JAVA_MAJOR="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')"
[ -n "$JAVA_MAJOR" ] && [ "$JAVA_MAJOR" -ge 17 ] || die "Java 17+ needed (found '${JAVA_MAJOR:-?}'): $INSTALL"

T0=$(date +%s)
echo "== packages (unchanged copies; test/conformance/packages/SOURCES.md)"
(cd "$DIR/packages" && sha256sum -c --quiet SHA256SUMS) || die "a package in $DIR/packages differs from SHA256SUMS"

echo "== build (tsc) and the validator (Maven, HAPI FHIR 8.8.0 from Maven Central)"
npm run build --silent
mkdir -p "$OUT" "$DIR/target"
if ! mvn -B -q -Dstyle.color=never -f "$DIR/pom.xml" compile >"$DIR/target/build.log" 2>&1; then
  tail -n 60 "$DIR/target/build.log" >&2
  die "maven build failed (full output: $DIR/target/build.log)"
fi

JAVA_OPTS="${CONFORMANCE_JAVA_OPTS:--Xms1g -Xmx4g -XX:+UseParallelGC}"
CLASSPATH_RUN="$DIR/target/classes:$(cat "$DIR/target/classpath.txt")"
if [ "${1:-}" = "--write-snapshots" ]; then
  # shellcheck disable=SC2086
  exec java $JAVA_OPTS -cp "$CLASSPATH_RUN" local.conformance.ConformanceRun \
    --packages "$DIR/packages" --ig "$DIR/ig" --definitions schemas/fhir --write-snapshots schemas/fhir
fi

echo "== corpus: the real app (buildApp) and the embedded FHIR server"
TS_NODE_TRANSPILE_ONLY=true node --import @isaacs/ts-node-temp-fork-for-pr-2009/import \
  scripts/conformance-corpus.ts "$OUT" "${CONFORMANCE_PLANS:-200}" "${CONFORMANCE_PLANS_7:-60}"

echo "== the HL7 reference validator"
set +e
# shellcheck disable=SC2086
java $JAVA_OPTS -cp "$CLASSPATH_RUN" local.conformance.ConformanceRun \
  --packages "$DIR/packages" --ig "$DIR/ig" --controls "$DIR/controls" --accepted "$DIR/accepted-warnings.json" \
  --definitions "$OUT/definitions" --corpus "$OUT/corpus.ndjson" --report "$OUT/report.json" \
  --errors "$OUT/errors.tsv" --threads "${CONFORMANCE_THREADS:-$(nproc)}" 2> "$OUT/validator.log" | tee "$OUT/report.txt"
status=${PIPESTATUS[0]}
set -e
echo "wall time: $(( $(date +%s) - T0 )) s (report: $OUT/report.txt, every error: $OUT/errors.tsv, validator log: $OUT/validator.log)"
exit "$status"
