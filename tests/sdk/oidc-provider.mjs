// A small OpenID Connect provider on loopback for the OAuth2 tests:
// GET /authorize issues a code and redirects back (the user is picked by
// `login_hint`), POST /token checks client credentials, redirect URI and the
// PKCE verifier, GET /userinfo answers for the issued bearer token.

import { createHash } from 'node:crypto';
import http from 'node:http';

export const CLIENT_ID = 'sdk-test-client';
export const CLIENT_SECRET = 'sdk-test-secret';

const USERS = {
  carol: { sub: 'carol-1', name: 'Carol C.', preferred_username: 'carol', email: 'carol@idp.test', email_verified: true },
  dave: { sub: 'dave-2', name: 'Dave', email: 'dave@idp.test', email_verified: true },
};

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

/** Client id and secret from HTTP Basic (RFC 6749, 2.3.1) or the form body. */
function clientCredentials(authorization, form) {
  if (authorization?.startsWith('Basic ')) {
    const [id, secret] = Buffer.from(authorization.slice(6), 'base64').toString('utf8').split(':');
    const unescape = (v) => decodeURIComponent((v ?? '').replace(/\+/g, ' '));
    return [unescape(id), unescape(secret)];
  }
  return [form.get('client_id'), form.get('client_secret')];
}

/** Starts the provider. @returns {Promise<{url: string, stop: () => Promise<void>}>} */
export async function startOidcProvider() {
  const grants = new Map();
  const tokens = new Map();
  let counter = 0;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const json = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const q = url.searchParams;
      const user = USERS[q.get('login_hint')];
      if (q.get('client_id') !== CLIENT_ID || q.get('response_type') !== 'code' || !user) return json(400, { error: 'invalid_request' });
      const code = `code-${++counter}`;
      grants.set(code, { challenge: q.get('code_challenge'), redirect: q.get('redirect_uri'), user });
      res.writeHead(302, { location: `${q.get('redirect_uri')}?code=${code}&state=${q.get('state')}` });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      const form = new URLSearchParams(await readBody(req));
      const [id, secret] = clientCredentials(req.headers.authorization, form);
      if (id !== CLIENT_ID || secret !== CLIENT_SECRET) return json(401, { error: 'invalid_client' });
      const grant = grants.get(form.get('code'));
      grants.delete(form.get('code'));
      const challenge = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
      if (!grant || form.get('redirect_uri') !== grant.redirect || challenge !== grant.challenge) {
        return json(400, { error: 'invalid_grant' });
      }
      const access = `access-${++counter}`;
      tokens.set(access, grant.user);
      return json(200, { access_token: access, token_type: 'Bearer', expires_in: 3600, refresh_token: 'refresh-1' });
    }
    if (req.method === 'GET' && url.pathname === '/userinfo') {
      const user = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
      return user ? json(200, user) : json(401, { error: 'invalid_token' });
    }
    json(404, {});
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Plays the browser's part: opens the provider's authURL (as listed by
 * auth-methods) with our redirect URL and returns the code from the redirect.
 */
export async function authorize(provider, redirectURL, loginHint) {
  const res = await fetch(`${provider.authURL}${encodeURIComponent(redirectURL)}&login_hint=${loginHint}`, { redirect: 'manual' });
  if (res.status !== 302) throw new Error(`authorize answered ${res.status}`);
  return new URL(res.headers.get('location')).searchParams.get('code');
}
