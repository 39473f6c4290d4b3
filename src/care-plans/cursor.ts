// Opaque paging cursors: base64url JSON of a keyset position (never a FHIR server URL).

export interface PageCursor {
  /** The lastUpdated of the last item returned ('' = from the beginning). */
  t: string;
  /** Ids already returned with exactly that lastUpdated (ties). */
  seen: string[];
}

export function encodeCursor(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/** The position, or undefined when the text is not a cursor this service gave out. */
export function decodeCursor(text: string | undefined): PageCursor | undefined {
  if (!text) return undefined;
  if (text.length > 4096 || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (typeof value?.t !== 'string' || !Array.isArray(value.seen)) return undefined;
    // A forged position must never reach the FHIR server's search: only a real instant is a position.
    const instant =
      /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-](0\d|1[0-4]):[0-5]\d)$/;
    if (value.t && (!instant.test(value.t) || Number.isNaN(Date.parse(value.t)))) return undefined;
    if (!value.seen.every((id: unknown) => typeof id === 'string' && /^[A-Za-z0-9\-.]{1,64}$/.test(id)))
      return undefined;
    return { t: value.t, seen: value.seen };
  } catch {
    return undefined;
  }
}
