// A real OpenID provider (npm oidc-provider) on loopback for the reviewer
// sign-in test: the authorization-code flow with PKCE for the approver's
// client, its development login form (any password), and a `groups` claim in
// the ID token: "carol" and "dave" are in "dba", everyone else in "dev".
//
//   node idp.mjs PORT REDIRECT_URI
// Prints "READY <issuer>" once listening.
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const redirectUri = process.argv[3];
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
  }],
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
