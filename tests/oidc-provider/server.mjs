// Test fixture: a real OpenID Connect provider (oidc-provider) that issues
// signed JWT access tokens via the client_credentials grant.
//
// Usage: node server.mjs [PORT]     (PORT 0 or absent = pick a free port)
//
// stdout carries exactly one line, `READY <port>`, once the server listens.
// Everything else (including oidc-provider's dev notices) goes to stderr.
// The process exits when stdin closes, and on SIGTERM / SIGINT.

import * as http from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { fstatSync } from 'node:fs';

import Provider from 'oidc-provider';

// oidc-provider prints its NOTICEs with console.info (stdout). Keep stdout
// reserved for the READY line the test harness parses.
console.log = console.info = console.debug = (...args) => console.error(...args);

const HOST = '127.0.0.1';
const API_RESOURCE = 'http://api.ticketgw.test';
const DEFAULT_TTL = 300;
const SECRET = 'secret';
const SCOPE = 'api';

// Per-client claims copied into every access token the client obtains.
const CLIENT_CLAIMS = {
  'tg-user': {
    realm_access: { roles: ['user'] },
    email: 'kc-user@example.test',
    name: 'KC User',
  },
  'tg-organizer': {
    realm_access: { roles: ['user', 'organizer'] },
    email: 'kc-organizer@example.test',
    email_verified: true,
    name: 'KC Organizer',
  },
  'tg-admin': {
    realm_access: { roles: ['user', 'admin'] },
    email: 'kc-admin@example.test',
    name: 'KC Admin',
  },
  'tg-short': {
    realm_access: { roles: ['user'] },
    email: 'kc-short@example.test',
    name: 'KC Short',
  },
};
// Access-token lifetime overrides (seconds) per client.
const CLIENT_TTL = { 'tg-short': 1 };

function exit(code = 0) {
  process.exit(code);
}

// Die together with the parent. The harness should spawn us with a piped
// stdin and keep its end open: EOF on stdin means the harness is gone. If
// stdin is not a pipe/socket (e.g. /dev/null, a file, a TTY) it is not
// watched, so the fixture can also be run by hand. As a fallback, exit when
// we get re-parented (the parent process died).
let stdinStat;
try {
  stdinStat = fstatSync(0);
} catch {
  stdinStat = undefined;
}
if (stdinStat && (stdinStat.isFIFO() || stdinStat.isSocket())) {
  process.stdin.on('end', () => exit(0));
  process.stdin.on('close', () => exit(0));
  process.stdin.on('error', () => exit(0));
  process.stdin.resume();
}
const initialPpid = process.ppid;
setInterval(() => {
  if (process.ppid !== initialPpid) exit(0);
}, 500).unref();
process.on('SIGTERM', () => exit(0));
process.on('SIGINT', () => exit(0));
process.on('SIGHUP', () => exit(0));

function rsaJwk(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

const requestedPort = Number.parseInt(process.argv[2] ?? '0', 10);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  console.error(`invalid port argument: ${process.argv[2]}`);
  exit(2);
}

const server = http.createServer();
server.on('error', (err) => {
  console.error(`server error: ${err.stack || err}`);
  exit(1);
});

server.listen(requestedPort, HOST, () => {
  const { port } = server.address();
  const issuer = `http://${HOST}:${port}`;

  const clients = Object.keys(CLIENT_CLAIMS).map((client_id) => ({
    client_id,
    client_secret: SECRET,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_post',
    scope: SCOPE,
  }));
  const provider = new Provider(issuer, {
    clients,
    // First key is used for signing (RS256); the second one is only published
    // in the JWKS (lets tests exercise kid selection among several keys).
    jwks: { keys: [rsaJwk(`rs256-${randomUUID()}`), rsaJwk(`rs256-spare-${randomUUID()}`)] },
    scopes: ['openid', 'offline_access', SCOPE],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // No `resource` parameter => the Ticket Gateway API audience.
        defaultResource: async () => API_RESOURCE,
        useGrantedResource: async () => true,
        // Any absolute URI is an acceptable resource; each gets JWT tokens
        // with itself as audience (tests use http://other.api.test for
        // wrong-audience rejection).
        getResourceServerInfo: async (_ctx, resourceIndicator) => ({
          scope: SCOPE,
          audience: resourceIndicator,
          accessTokenTTL: DEFAULT_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: async (_ctx, token) => {
      const claims = CLIENT_CLAIMS[token.clientId];
      return claims ? structuredClone(claims) : undefined;
    },
    ttl: {
      ClientCredentials: (_ctx, token, client) => {
        const override = CLIENT_TTL[client.clientId];
        if (override !== undefined) return override;
        return token.resourceServer?.accessTokenTTL || DEFAULT_TTL;
      },
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL || DEFAULT_TTL,
    },
    // Plain http on loopback is fine for tests.
    proxy: false,
  });

  provider.on('server_error', (_ctx, err) => console.error(`oidc server_error: ${err.stack || err}`));

  server.on('request', provider.callback());

  process.stdout.write(`READY ${port}\n`);
});
