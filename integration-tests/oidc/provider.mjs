// A real OpenID provider (npm oidc-provider) on loopback for the integration
// tests: client-credentials grants return RS256 `at+jwt` access tokens for the
// gateway audience; keys at /jwks. Each start makes a fresh signing key with
// the given kid, so restarting with another kid is a key rotation.
//
//   node provider.mjs PORT KID
// Prints "READY <issuer>" once listening.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const kid = process.argv[3] || 'key-1';
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'agent',
    client_secret: 'agent-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  ttl: { ClientCredentials: 600 },
  features: {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://gateway.transit-guard.test',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        audience: 'agent-gateway',
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
        scope: 'customers:read customers:write',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`READY ${issuer}`));
