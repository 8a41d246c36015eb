// OAuth2 login through the SDK (`listAuthMethods` + `authWithOAuth2Code`)
// against a real OpenID Connect provider on loopback (oidc-provider.mjs):
// the first login creates the user, the next reuses it, an existing account
// with the same verified email is linked, and a forged code is refused.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { guestClient, rejectionOf, startServer, superuserClient } from './helpers.mjs';
import { CLIENT_ID, CLIENT_SECRET, authorize, startOidcProvider } from './oidc-provider.mjs';

describe('OAuth2 with an OpenID Connect provider', () => {
  let env;
  let idp;
  let su;

  before(async () => {
    env = await startServer();
    idp = await startOidcProvider();
    su = await superuserClient(env.url);
    await su.collections.update('users', {
      oauth2: {
        enabled: true,
        providers: [{
          name: 'oidc', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, displayName: 'Loopback IdP',
          authURL: `${idp.url}/authorize`, tokenURL: `${idp.url}/token`, userInfoURL: `${idp.url}/userinfo`,
        }],
      },
    });
  });

  after(async () => {
    await idp?.stop();
    await env?.stop();
  });

  async function login(hint, createData) {
    const pb = guestClient(env.url);
    const methods = await pb.collection('users').listAuthMethods();
    const provider = methods.oauth2.providers.find((p) => p.name === 'oidc');
    const redirectURL = `${env.url}/api/oauth2-redirect`;
    const code = await authorize(provider, redirectURL, hint);
    const auth = await pb.collection('users').authWithOAuth2Code('oidc', code, provider.codeVerifier, redirectURL, createData);
    return { pb, auth, provider };
  }

  test('listAuthMethods offers the provider with a PKCE challenge and an authURL awaiting redirect_uri', async () => {
    const methods = await guestClient(env.url).collection('users').listAuthMethods();

    assert.equal(methods.oauth2.enabled, true);
    const [provider] = methods.oauth2.providers;
    assert.equal(provider.name, 'oidc');
    assert.equal(provider.displayName, 'Loopback IdP');
    assert.equal(provider.codeChallengeMethod, 'S256');
    assert.equal(provider.codeVerifier.length, 43);
    assert.equal(provider.state.length, 30);
    assert.ok(provider.authURL.startsWith(`${idp.url}/authorize?client_id=${CLIENT_ID}&`), provider.authURL);
    assert.ok(provider.authURL.endsWith('&redirect_uri='), provider.authURL);
  });

  test('the first login creates a verified user; the second logs into the same one', async () => {
    const first = await login('carol', { emailVisibility: true });
    const second = await login('carol');

    assert.equal(first.auth.meta.isNew, true);
    assert.equal(first.auth.meta.email, 'carol@idp.test');
    assert.equal(first.auth.meta.rawUser.sub, 'carol-1');
    assert.equal(first.auth.record.email, 'carol@idp.test');
    assert.equal(first.auth.record.verified, true);
    assert.equal(first.auth.record.name, 'Carol C.');
    assert.equal(first.pb.authStore.isValid, true);
    assert.equal(first.pb.authStore.record.id, first.auth.record.id);
    assert.equal(second.auth.meta.isNew, false);
    assert.equal(second.auth.record.id, first.auth.record.id);
    const refreshed = await second.pb.collection('users').authRefresh();
    assert.equal(refreshed.record.id, first.auth.record.id);
  });

  test('an account signed up with a password is linked by its verified email, not duplicated', async () => {
    const existing = await su.collection('users').create({ email: 'dave@idp.test', password: 'Dave-Passw0rd', passwordConfirm: 'Dave-Passw0rd' });

    const { auth } = await login('dave');

    assert.equal(auth.record.id, existing.id);
    assert.equal(auth.meta.isNew, false);
    const links = await su.collection('_externalAuths').getFullList({ filter: `recordRef = "${existing.id}"` });
    assert.equal(links.length, 1);
    assert.equal(links[0].provider, 'oidc');
  });

  test('a code the provider never issued is refused and no user appears', async () => {
    const before = await su.collection('users').getList(1, 1);
    const methods = await guestClient(env.url).collection('users').listAuthMethods();

    const err = await rejectionOf(() => guestClient(env.url).collection('users')
      .authWithOAuth2Code('oidc', 'forged-code', methods.oauth2.providers[0].codeVerifier, `${env.url}/api/oauth2-redirect`));

    assert.equal(err.status, 400);
    assert.equal(err.response.message, 'Failed to fetch OAuth2 token.');
    const afterList = await su.collection('users').getList(1, 1);
    assert.equal(afterList.totalItems, before.totalItems);
  });
});
