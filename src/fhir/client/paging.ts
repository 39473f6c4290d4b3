// Paging through a FHIR server's Bundles: a `next` link is followed only within the base URL, so a link the server
// supplies can never send the service's credentials elsewhere, and never twice (a server that pages in a loop).
import type { Bundle } from 'fhir/r4.js';
import { FhirServerError } from './errors.js';

/**
 * A server-supplied paging link as an absolute URL, when it lies within the base URL (same scheme, host and port,
 * the base's path or below it, no user info); else undefined: following it would send our credentials elsewhere.
 */
export function linkWithinBase(link: string, baseUrl: string): string | undefined {
  try {
    const base = new URL(baseUrl);
    const url = new URL(link, `${base.href.replace(/\/+$/, '')}/`);
    const path = base.pathname.replace(/\/+$/, '');
    const inside = url.pathname === path || url.pathname.startsWith(`${path}/`);
    return url.origin === base.origin && !url.username && !url.password && inside ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The pages after `first`, each fetched with `fetchPage` from the page before's `next` link: only within `baseUrl`
 * (else an `upstream` error, nothing fetched), and never one link twice.
 */
export async function* followNextLinks(
  first: Bundle,
  baseUrl: string,
  fetchPage: (url: string) => Promise<Bundle>,
): AsyncGenerator<Bundle> {
  const followed = new Set<string>();
  for (let page = first; ; ) {
    const link = page.link?.find((l) => l.relation === 'next')?.url;
    if (!link) return;
    const url = linkWithinBase(link, baseUrl);
    if (!url || followed.has(url)) {
      const why = url ? 'repeats an earlier page' : 'points outside FHIR_BASE_URL';
      throw new FhirServerError('upstream', `the FHIR server's next-page link ${why}; it was not followed`);
    }
    followed.add(url);
    page = await fetchPage(url);
    yield page;
  }
}
