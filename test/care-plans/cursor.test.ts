// Paging cursors (src/care-plans/cursor.ts): opaque base64url keyset positions that round-trip, and anything a
// caller forges instead is not a cursor (so it never reaches the FHIR server's search).
import t from 'tap';
import { decodeCursor, encodeCursor } from '../../src/care-plans/cursor.js';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

t.test('a cursor round-trips and is opaque base64url', async (t) => {
  const position = { t: '2026-11-20T10:15:30.123Z', seen: ['plan-1', 'plan.2'] };
  const cursor = encodeCursor(position);
  t.match(cursor, /^[A-Za-z0-9_-]+$/);
  t.same(decodeCursor(cursor), position);
  t.same(decodeCursor(encodeCursor({ t: '', seen: [] })), { t: '', seen: [] }, 'the beginning');
  t.same(
    decodeCursor(b64({ t: '2026-11-20T10:15:30+01:00', seen: [], extra: 1 })),
    {
      t: '2026-11-20T10:15:30+01:00',
      seen: [],
    },
    'only the position is kept',
  );
});

t.test('anything else is not a cursor', async (t) => {
  const refused: [string, string | undefined][] = [
    ['missing', undefined],
    ['empty', ''],
    ['not base64url', 'abc+/='],
    ['too long', 'A'.repeat(4097)],
    ['not JSON', Buffer.from('{nope').toString('base64url')],
    ['no time', b64({ seen: [] })],
    ['seen is not a list', b64({ t: '', seen: 'x' })],
    ['a date without a time', b64({ t: '2026-11-20', seen: [] })],
    ['a time without a zone', b64({ t: '2026-11-20T10:15:30', seen: [] })],
    ['an impossible month', b64({ t: '2026-13-01T00:00:00Z', seen: [] })],
    [
      'a search parameter smuggled in the time',
      b64({ t: '2026-11-20T10:15:30Z&subject=Patient/x', seen: [] }),
    ],
    ['an id that is not a FHIR id', b64({ t: '', seen: ['a/b'] })],
    ['an id that is not a string', b64({ t: '', seen: [7] })],
    ['an id over 64 characters', b64({ t: '', seen: ['x'.repeat(65)] })],
  ];
  for (const [what, text] of refused) t.equal(decodeCursor(text), undefined, what);
});
