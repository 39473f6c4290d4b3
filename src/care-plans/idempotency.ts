// Idempotency keys: hashed and scoped to the caller, so a retry finds its own write and a reused key is told.
import { createHash } from 'node:crypto';
import { idempotencyScope } from '../auth/caller.js';
import type { EditContext } from './types.js';

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** JSON with sorted keys, so that the same body always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The plan-revision an edit with an Idempotency-Key writes: the key (hashed, scoped to the caller) and the request
 * (hashed), so that a retry can find its own write and tell a reused key.
 */
export function editRevision(id: string, context: EditContext): string {
  const idempotency = context.idempotency as NonNullable<EditContext['idempotency']>;
  const scope = context.caller ? idempotencyScope(context.caller) : '';
  const key = sha256(`edit\n${scope}\n${idempotency.key}`).slice(0, 32);
  return `${key}.${sha256(canonicalJson({ id, request: idempotency.request })).slice(0, 32)}`;
}
