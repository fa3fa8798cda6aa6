// A real OpenID provider (npm oidc-provider) on loopback for the reviewer
// sign-in test: the authorization-code flow with PKCE for the approver's
// client, its development login form (any password), and a `groups` claim in
// the ID token: "carol" and "dave" are in "dba", everyone else in "dev".
//
//   node idp.mjs PORT REDIRECT_URI [ALG]
// ALG is the ID tokens' signature algorithm: RS256 (the default, with the
// provider's development RSA key) or ES256 (with a fresh P-256 key, the only
// key the provider then has).
// Prints "READY <issuer>" once listening.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const redirectUri = process.argv[3];
const alg = process.argv[4] || 'RS256';
if (!['RS256', 'ES256'].includes(alg)) throw new Error(`unsupported ALG ${alg}`);
const keys = alg === 'ES256'
  ? { jwks: { keys: [{ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid: 'es1', use: 'sig', alg: 'ES256' }] } }
  : {};
const issuer = `http://127.0.0.1:${port}`;
const groupsOf = (id) => (['carol', 'dave'].includes(id) ? ['dba'] : ['dev']);

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'approver',
    client_secret: 'approver-secret-0123456789',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: alg,
  }],
  ...keys,
  pkce: { required: () => true },
  claims: { openid: ['sub'], groups: ['groups'], profile: ['name'] },
  scopes: ['openid', 'groups', 'profile'],
  // The groups go into the ID token itself (the approver reads no userinfo).
  conformIdTokenClaims: false,
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, name: id, groups: groupsOf(id) }),
  }),
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['tg-test-cookie-key-0123456789'] },
});
provider.proxy = false;
provider.listen(port, '127.0.0.1', () => console.log(`READY ${issuer}`));
