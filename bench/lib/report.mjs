// The benchmark's report: the tables on stdout and the verdicts against the targets.
export const fmt = (n, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '-';
export const ratio = (a, b) => (a && b ? Number((a / b).toFixed(3)) : undefined);

export function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    `| ${cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ')} |`;
  return [
    line(headers),
    `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

export function verdict(targets, key, value) {
  const target = targets[key];
  if (!target) return '';
  if (value === undefined || !Number.isFinite(value)) return 'not measured';
  if (target.min !== undefined)
    return value >= target.stretch ? 'PASS (stretch)' : value >= target.min ? 'PASS' : 'MISS';
  return value <= target.stretch ? 'PASS (stretch)' : value <= target.max ? 'PASS' : 'MISS';
}

const LABELS = {
  floor: '1 floor: bare Fastify echo',
  direct: '2 direct push (fhir-kit-client)',
  service: '3 service POST /care-plans',
  toFhir: '4 service POST /care-plans/$to-fhir',
};

export function phaseTable(phases, connections) {
  const rps = (name) => phases[name]?.requestsPerSecond;
  const rows = [];
  for (const n of Object.keys(LABELS).filter((name) => phases[name])) {
    const p = phases[n];
    const vs = { service: 'direct', toFhir: 'floor' }[n];
    const alloc = p.allocation?.server?.bytesPerRequest;
    const row = (label, run, ratioText) => [
      label,
      fmt(run.requestsPerSecond),
      fmt(run.latencyMs.p50),
      fmt(run.latencyMs.p99),
      `${run.non2xx}/${run.errors + run.timeouts}`,
      fmt(run.requests),
      fmt(run.cpuUsPerRequest.server),
      run === p && alloc !== undefined ? fmt(alloc / 1024) : '',
      `${run.cpuPercent.server}% / ${run.cpuPercent.fhir ?? '-'}% / ${run.cpuPercent.autocannon}% / ${run.cpuPercent.foreign}%`,
      ratioText,
    ];
    rows.push(row(LABELS[n], p, vs ? `${ratio(p.requestsPerSecond, rps(vs))?.toFixed(2)} vs ${vs}` : ''));
    if (p.oneConnection) rows.push(row('  same, 1 connection', p.oneConnection, ''));
  }
  return table(
    [
      `phase (${connections} conn.)`,
      'req/s',
      'p50 ms',
      'p99 ms',
      'non-2xx/err',
      'requests',
      'server CPU us/req',
      'alloc KB/req',
      'CPU server/FHIR/load/foreign',
      'ratio',
    ],
    rows,
  );
}

export function microTable(micro, sizes) {
  return table(
    [
      '5 micro (1 core)',
      'bundle B',
      'toFhir/s',
      'map/s',
      'validate/s',
      'walk/s',
      'stringify/s',
      'toFhir+stringify/s',
    ],
    sizes.map((size) => {
      const m = micro[size];
      return [
        `${size} plan`,
        fmt(m.bundleBytesAvg),
        fmt(m.toFhir.perSecond),
        fmt(m.map?.perSecond),
        fmt(m.validate?.perSecond),
        fmt(m.walk?.perSecond),
        fmt(m.stringify?.perSecond),
        fmt(m.toFhirAndStringify?.perSecond),
      ];
    }),
  );
}

export function summaryTable(summary, targets) {
  return table(
    ['key', 'value', 'target (stretch)', 'verdict'],
    Object.entries(summary).map(([key, value]) => {
      const t = targets[key] ?? {};
      const digits = (x) => (x < 10 ? 2 : 0);
      return [
        key,
        value === undefined ? '-' : fmt(value, Number.isInteger(value) ? 0 : 2),
        t.min !== undefined
          ? `>= ${fmt(t.min, digits(t.min))} (${fmt(t.stretch, digits(t.stretch))})`
          : t.max !== undefined
            ? `<= ${fmt(t.max, digits(t.max))} (${fmt(t.stretch, digits(t.stretch))})`
            : '',
        verdict(targets, key, value),
      ];
    }),
  );
}
