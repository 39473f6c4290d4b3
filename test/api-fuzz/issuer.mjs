// A throwaway token issuer on loopback for `npm run test:api-fuzz` (scripts/test-api-fuzz.sh): a JWKS with one
// fresh RSA key (as test/helpers/auth.ts makes them), and one system token minted with it. It writes one line of
// JSON to stdout, {"jwksUrl", "issuer", "audience", "token"}, then serves the JWKS until it is killed.
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

const ISSUER = 'https://auth.api-fuzz.example/realms/care';
const AUDIENCE = 'https://care-plans.api-fuzz.example';
const LIFETIME_S = Number(process.env.API_FUZZ_TOKEN_LIFETIME_S ?? 3600);

const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwks = JSON.stringify({
  keys: [{ ...(await exportJWK(publicKey)), kid: 'fuzz-1', alg: 'RS256', use: 'sig' }],
});

const server = createServer((req, res) => {
  if (req.url !== '/jwks.json') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
});
server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({
    scope: 'system/CarePlan.cruds system/Subscription.cruds',
    client_id: 'api-fuzz',
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'fuzz-1', typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('api-fuzz')
    .setIssuedAt(now - 10)
    .setExpirationTime(now + LIFETIME_S)
    .sign(privateKey);
  process.stdout.write(
    `${JSON.stringify({ jwksUrl: `http://127.0.0.1:${port}/jwks.json`, issuer: ISSUER, audience: AUDIENCE, token })}\n`,
  );
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
