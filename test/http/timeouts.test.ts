// Slow and silent clients (issue 12): a body that trickles in, headers and then nothing, headers that never end,
// an idle keep-alive connection: each is closed by its timeout, promptly, while the service keeps answering.
// Before, none of these timeouts was set and 200 such connections were all still open after 95 s.
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { startTestService } from '../helpers/service.js';

const REQUEST_TIMEOUT_MS = 1500;
const HEADERS_TIMEOUT_MS = 800;
const KEEP_ALIVE_TIMEOUT_MS = 400;

/** Opens a socket, runs `talk`, and resolves with how long the server kept it open and what it answered. */
function until(port: number, talk: (socket: Socket) => void): Promise<{ ms: number; answer: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const started = performance.now();
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve({ ms: performance.now() - started, answer }));
    socket.on('connect', () => talk(socket));
  });
}

t.test('the timeouts default to safe values, are configurable and checked', async (t) => {
  const defaults = loadConfig({});
  t.same(
    [defaults.requestTimeoutMs, defaults.headersTimeoutMs, defaults.keepAliveTimeoutMs],
    [30_000, 10_000, 5_000],
  );
  t.throws(
    () => loadConfig({ HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '10000' }),
    /HEADERS_TIMEOUT_MS/,
  );
  t.throws(() => loadConfig({ REQUEST_TIMEOUT_MS: '0' }), /REQUEST_TIMEOUT_MS/);
});

t.test('slow, silent and idle connections are closed by their timeouts', async (t) => {
  const service = await startTestService({
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_TIMEOUT_MS),
  });
  t.teardown(() => service.close());
  await service.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (service.app.server.address() as { port: number }).port;
  const headers = 'POST /care-plans/$to-fhir HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
  const timers: NodeJS.Timeout[] = [];
  t.teardown(() => {
    for (const timer of timers) clearInterval(timer);
  });

  const [trickle, silent, slowHeaders, idle] = await Promise.all([
    // A body announced as 10,000 bytes, sent one byte every 100 ms.
    until(port, (socket) => {
      socket.write(`${headers}Content-Length: 10000\r\n\r\n{`);
      timers.push(setInterval(() => socket.writable && socket.write(' '), 100));
    }),
    // Headers, then no body at all.
    until(port, (socket) => socket.write(`${headers}Content-Length: 100\r\n\r\n`)),
    // Headers that never end: one header line every 100 ms.
    until(port, (socket) => {
      socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n');
      let n = 0;
      timers.push(setInterval(() => socket.writable && socket.write(`X-Slow-${n++}: 1\r\n`), 100));
    }),
    // One request answered, then the keep-alive connection stays idle.
    until(port, (socket) => socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n')),
  ]);
  t.comment(
    `closed after: trickling body ${Math.round(trickle.ms)} ms, no body ${Math.round(silent.ms)} ms, ` +
      `endless headers ${Math.round(slowHeaders.ms)} ms, idle keep-alive ${Math.round(idle.ms)} ms`,
  );
  // Closed no earlier than the timeout allows, and within it plus a generous margin for the checking interval and
  // a shared machine (without the timeouts these stayed open indefinitely).
  const margin = 2500;
  t.ok(trickle.ms >= REQUEST_TIMEOUT_MS - 50 && trickle.ms < REQUEST_TIMEOUT_MS + margin, 'a trickling body');
  t.match(trickle.answer, /^HTTP\/1\.1 408 /, '... gets 408');
  t.ok(
    silent.ms >= REQUEST_TIMEOUT_MS - 50 && silent.ms < REQUEST_TIMEOUT_MS + margin,
    'headers without a body',
  );
  t.match(silent.answer, /^HTTP\/1\.1 408 /, '... gets 408');
  t.ok(
    slowHeaders.ms >= HEADERS_TIMEOUT_MS - 50 && slowHeaders.ms < HEADERS_TIMEOUT_MS + margin,
    'headers that never end',
  );
  t.ok(
    idle.ms >= KEEP_ALIVE_TIMEOUT_MS - 50 && idle.ms < KEEP_ALIVE_TIMEOUT_MS + margin,
    'an idle keep-alive connection',
  );
  t.match(idle.answer, /^HTTP\/1\.1 200 /, '... after its request was answered');
  const live = await fetch(`http://127.0.0.1:${port}/health/live`);
  t.equal(live.status, 200, 'and the service answers as ever');
});
