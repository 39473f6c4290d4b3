// Requests Node's HTTP parser refuses before Fastify sees them (a request line or headers over the size limit,
// malformed HTTP, a timeout) are answered as problems too, written to the raw socket, and logged without their
// raw bytes.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { PROBLEM_BASE, PROBLEM_TYPES, type ProblemType } from './problems.js';

export function clientErrorHandler(
  this: FastifyInstance,
  error: Error & { code?: string },
  socket: Duplex,
): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [problemType, detail]: [ProblemType, string] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? ['headers-too-large', 'the request line and headers together exceed the size limit (16 KiB)']
      : ['bad-request', 'the request is not well-formed HTTP'];
  const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : PROBLEM_TYPES[problemType].status;
  this.log.debug({ code: error.code, status }, 'client error');
  if (socket.writable) {
    const body = JSON.stringify({
      type: `${PROBLEM_BASE}/${problemType}`,
      title: PROBLEM_TYPES[problemType].title,
      status,
      detail: status === 408 ? 'the request took too long to arrive' : detail,
    });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
