#!/usr/bin/env node
// Prints one "N passed, N failed" line per suite log and a total, so CI sees how many tests ran (tap's own
// closing comment, "# { total: N, pass: N }", is not a line CI reads). Usage: ci-summary.mjs NAME=LOG ...
import { readFileSync } from 'node:fs';

/** tap: the last closing comment of each tap run in the log (test:hapi holds two runs). */
function tapCounts(text) {
  const runs = [...text.matchAll(/^# \{ (total: \d+[^}]*)\}$/gm)].map((match) => {
    const fields = Object.fromEntries(
      match[1].split(',').map((pair) => pair.split(':').map((part) => part.trim())),
    );
    return { passed: Number(fields.pass ?? 0), failed: Number(fields.fail ?? 0) };
  });
  return runs;
}

/** schemathesis: "Test cases: N generated, N passed[, N failed][, N skipped]". */
function schemathesisCounts(text) {
  return [...text.matchAll(/^\s*(\d+) generated, (\d+) passed(?:, (\d+) failed)?/gm)].map((match) => ({
    passed: Number(match[2]),
    failed: Number(match[3] ?? 0),
  }));
}

/** The HL7 validator run: each validation without an error passes, each one with errors fails; a negative control
 * passes when the validator rejects it. */
function conformanceCounts(text) {
  const total = text.match(/^ {2}total validations: (\d+)/m);
  const errors = text.match(/^== errors: (\d+)/m);
  const controls = text.match(/^== negative controls rejected: (\d+) of (\d+)/m);
  if (!total || !errors || !controls) return [];
  const failedValidations = Math.min(Number(errors[1]), Number(total[1]));
  const controlsMissed = Number(controls[2]) - Number(controls[1]);
  return [
    {
      passed: Number(total[1]) - failedValidations + Number(controls[1]),
      failed: failedValidations + controlsMissed,
    },
  ];
}

let passed = 0;
let failed = 0;
for (const argument of process.argv.slice(2)) {
  const [name, path] = argument.split('=');
  const text = readFileSync(path, 'utf8');
  const runs = [...tapCounts(text), ...schemathesisCounts(text), ...conformanceCounts(text)];
  if (runs.length === 0) {
    console.log(`${name}: no test count found in ${path}`);
    process.exitCode = 1;
    continue;
  }
  const suite = runs.reduce((sum, run) => ({
    passed: sum.passed + run.passed,
    failed: sum.failed + run.failed,
  }));
  passed += suite.passed;
  failed += suite.failed;
  console.log(`${name}: ${suite.passed} passed, ${suite.failed} failed`);
}
console.log(`total: ${passed} passed, ${failed} failed`);
if (failed > 0) process.exitCode = 1;
