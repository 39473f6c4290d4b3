// Receivers are an SSRF risk (OWASP SSRF Prevention Cheat Sheet): an endpoint must be https, and must not reach
// private, loopback or link-local addresses, unless its host is listed in WEBHOOK_ALLOWED_HOSTS. The address is
// checked after DNS resolution, and the connection goes to the address that was checked (no second lookup).
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** Not reachable from outside, or not unicast: RFC 1918, 6598, 3927, 5735/6890 special use, RFC 4193, 4291. */
const NON_PUBLIC = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  NON_PUBLIC.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  NON_PUBLIC.addSubnet(net, bits, 'ipv6');

export function isPublicAddress(address: string): boolean {
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) reaches the IPv4 address: judged as that one.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return isPublicAddress(mapped);
  const family = isIP(address);
  if (family === 0) return false;
  // NAT64 (64:ff9b::/96, RFC 6052) and other IPv4-embedding prefixes are refused as well.
  if (family === 6 && /^(64:ff9b:|::ffff:)/i.test(address)) return false;
  return !NON_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Why an endpoint is refused (for the API's 422), or undefined when its form is acceptable. */
export function endpointProblem(text: string, allowedHosts: readonly string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.username || url.password) return 'must not carry credentials';
  if (url.hash) return 'must not have a fragment';
  const host = url.hostname.toLowerCase();
  const allowed = allowedHosts.includes(host);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowed)) {
    return allowed
      ? 'must be http or https'
      : 'must be https (plain http only for hosts in WEBHOOK_ALLOWED_HOSTS)';
  }
  const literal = host.replace(/^\[|\]$/g, '');
  if (isIP(literal) && !allowed && !isPublicAddress(literal)) {
    return 'is a private, loopback or link-local address (allowed only for hosts in WEBHOOK_ALLOWED_HOSTS)';
  }
  if (!allowed && (host === 'localhost' || host.endsWith('.localhost'))) return 'is a loopback host name';
  return undefined;
}

export class EndpointRefused extends Error {}

/**
 * The address to connect to: the host resolved, every address checked (a name that resolves to one private
 * address among public ones is refused: a resolver may answer either next time).
 */
export async function resolveEndpoint(
  url: URL,
  allowedHosts: readonly string[],
): Promise<{ address: string; family: 4 | 6 }> {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const allowed = allowedHosts.includes(url.hostname.toLowerCase());
  const addresses = isIP(host)
    ? [{ address: host, family: isIP(host) }]
    : await lookup(host, { all: true, verbatim: true }).catch(() => {
        throw new EndpointRefused(`the endpoint's host does not resolve`);
      });
  if (addresses.length === 0) throw new EndpointRefused(`the endpoint's host does not resolve`);
  if (!allowed && addresses.some((a) => !isPublicAddress(a.address))) {
    throw new EndpointRefused('the endpoint resolves to a private, loopback or link-local address');
  }
  return { address: addresses[0].address, family: addresses[0].family === 6 ? 6 : 4 };
}
