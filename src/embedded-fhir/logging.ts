// How the embedded FHIR server names a request in its log lines: the route's shape, never an id or a query value
// (they are PHI). The logger itself comes from its process (src/server.ts, or main.ts standalone).

/**
 * A FHIR request URL as logged: the route's shape only, e.g. /fhir/CarePlan/:id/_history/:vid. The resource type
 * (first segment), `_history`, `_search` and `$operations` stay; every other segment (ids, anything a caller typed)
 * becomes a placeholder, and the query string is dropped (its values are PHI: patient=..., identifier=...).
 */
export function fhirRoute(url: string | undefined, base = '/fhir'): string {
  const path = (url ?? '').split('?', 1)[0];
  if (path !== base && !path.startsWith(`${base}/`)) return '[not FHIR]';
  const shape = [base];
  let previous = 'base';
  for (const segment of path.slice(base.length).split('/').filter(Boolean)) {
    if (previous === 'base' && /^[A-Z][A-Za-z]{1,63}$/.test(segment)) previous = 'type';
    else if (
      segment === '_history' ||
      segment === '_search' ||
      /^\$[A-Za-z][A-Za-z0-9-]{0,63}$/.test(segment)
    )
      previous = segment;
    else if (previous === 'base' && segment === 'metadata') previous = segment;
    else {
      shape.push(previous === '_history' ? ':vid' : ':id');
      previous = 'id';
      continue;
    }
    shape.push(segment);
  }
  return shape.join('/');
}
