// The plan's version as an HTTP entity tag, in one place: answers carry W/"<version>"; If-Match and If-None-Match
// may name it as W/"v", "v" or v.
import { etagVersion } from '../fhir/client/gateway.js';

export function formatEtag(version: string): string {
  return `W/"${version}"`;
}

/** The version an entity tag names (W/"v", "v" or v), if any. */
export function versionOfEtag(tag: string | undefined): string | undefined {
  return etagVersion(tag);
}
