// Superuser login through the SDK: `pb.collection('_superusers').authWithPassword()`
// and what the SDK's auth store makes of the response.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ClientResponseError } from 'pocketbase';

import { SUPERUSER_EMAIL, SUPERUSER_PASSWORD, guestClient, rejectionOf, startServer } from './helpers.mjs';

/** The id the JS SDK hard-codes for `_superusers` in `authStore.isSuperuser`. */
const SUPERUSERS_COLLECTION_ID = 'pbc_3142635823';

function jwtPayload(token) {
  const [, payload] = token.split('.');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}

describe('superuser auth with password', () => {
  let server;

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await server?.stop();
  });

  test('a superuser logs in with email and password and the auth store becomes a valid superuser session', async () => {
    const pb = guestClient(server.url);

    const auth = await pb.collection('_superusers').authWithPassword(SUPERUSER_EMAIL, SUPERUSER_PASSWORD);

    assert.equal(pb.authStore.isValid, true, 'token must decode to an unexpired JWT');
    assert.equal(pb.authStore.isSuperuser, true, 'the SDK must recognise the session as a superuser');
    assert.equal(pb.authStore.token, auth.token);
    assert.equal(auth.record.email, SUPERUSER_EMAIL);
    assert.equal(auth.record.collectionName, '_superusers');
    assert.equal(auth.record.collectionId, SUPERUSERS_COLLECTION_ID);
    assert.match(auth.record.id, /^[a-z0-9]{15}$/);
    assert.equal(pb.authStore.record?.id, auth.record.id);
  });

  test('the superuser auth record carries no password or token key', async () => {
    const pb = guestClient(server.url);

    const { record } = await pb.collection('_superusers').authWithPassword(SUPERUSER_EMAIL, SUPERUSER_PASSWORD);

    assert.equal('password' in record, false, `record keys: ${Object.keys(record)}`);
    assert.equal('tokenKey' in record, false, `record keys: ${Object.keys(record)}`);
    assert.equal(record.verified, true);
    assert.match(record.created, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.match(record.updated, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  test('the superuser token is an auth JWT for the superusers collection that expires in the future', async () => {
    const pb = guestClient(server.url);

    const { token, record } = await pb.collection('_superusers').authWithPassword(SUPERUSER_EMAIL, SUPERUSER_PASSWORD);
    const claims = jwtPayload(token);

    assert.equal(claims.type, 'auth');
    assert.equal(claims.collectionId, SUPERUSERS_COLLECTION_ID);
    assert.equal(claims.id, record.id);
    assert.ok(claims.exp * 1000 > Date.now(), `exp ${claims.exp} must be in the future`);
  });

  test('a wrong password is rejected with status 400 and leaves the auth store empty', async () => {
    const pb = guestClient(server.url);

    const err = await rejectionOf(() =>
      pb.collection('_superusers').authWithPassword(SUPERUSER_EMAIL, 'not-the-password'),
    );

    assert.ok(err instanceof ClientResponseError, `expected ClientResponseError, got ${err}`);
    assert.equal(err.status, 400);
    assert.deepEqual(err.response, { data: {}, message: 'Failed to authenticate.', status: 400 });
    assert.equal(pb.authStore.isValid, false);
    assert.equal(pb.authStore.isSuperuser, false);
  });

  test('an unknown email is rejected exactly like a wrong password', async () => {
    const pb = guestClient(server.url);

    const err = await rejectionOf(() =>
      pb.collection('_superusers').authWithPassword('nobody@example.com', SUPERUSER_PASSWORD),
    );

    assert.ok(err instanceof ClientResponseError, `expected ClientResponseError, got ${err}`);
    assert.equal(err.status, 400);
    assert.deepEqual(err.response, { data: {}, message: 'Failed to authenticate.', status: 400 });
  });
});
