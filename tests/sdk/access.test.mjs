// How the SDK's auth state meets the server's access rules: requests without a
// token to a collection whose rules are null are refused with 403, the same
// requests with the superuser token succeed, and an empty rule lets guests in.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ClientResponseError } from 'pocketbase';

import {
  SUPERUSER_EMAIL,
  SUPERUSER_PASSWORD,
  guestClient,
  rejectionOf,
  startServer,
  superuserClient,
} from './helpers.mjs';

const SUPERUSERS_ONLY = { data: {}, message: 'Only superusers can perform this action.', status: 403 };

describe('access to collections with null and empty rules', () => {
  let server;
  let admin;
  let locked;
  let lockedRecord;
  let openRecord;

  before(async () => {
    server = await startServer();
    admin = await superuserClient(server.url);
    locked = await admin.collections.create({ name: 'locked', fields: [{ name: 'title', type: 'text' }] });
    await admin.collections.create({
      name: 'open',
      listRule: '',
      viewRule: '',
      createRule: '',
      updateRule: '',
      deleteRule: '',
      fields: [{ name: 'title', type: 'text' }],
    });
    lockedRecord = await admin.collection('locked').create({ title: 'secret' });
    openRecord = await admin.collection('open').create({ title: 'public' });
  });

  after(async () => {
    await server?.stop();
  });

  test('a new collection has null rules, so only superusers may use it', () => {
    assert.deepEqual(
      [locked.listRule, locked.viewRule, locked.createRule, locked.updateRule, locked.deleteRule],
      [null, null, null, null, null],
    );
  });

  for (const [action, call] of [
    ['list', (pb) => pb.collection('locked').getList(1, 10)],
    ['view', (pb) => pb.collection('locked').getOne(lockedRecord.id)],
    ['create', (pb) => pb.collection('locked').create({ title: 'x' })],
    ['update', (pb) => pb.collection('locked').update(lockedRecord.id, { title: 'x' })],
    ['delete', (pb) => pb.collection('locked').delete(lockedRecord.id)],
  ]) {
    test(`a guest who tries to ${action} records of a collection with a null rule gets 403`, async () => {
      const guest = guestClient(server.url);

      const err = await rejectionOf(() => call(guest));

      assert.ok(err instanceof ClientResponseError, `expected ClientResponseError, got ${err}`);
      assert.equal(err.status, 403, JSON.stringify(err.response));
      assert.deepEqual(err.response, SUPERUSERS_ONLY);
    });
  }

  test('the same list succeeds once the client is logged in as a superuser', async () => {
    const pb = guestClient(server.url);
    await rejectionOf(() => pb.collection('locked').getList(1, 10));

    await pb.collection('_superusers').authWithPassword(SUPERUSER_EMAIL, SUPERUSER_PASSWORD);
    const page = await pb.collection('locked').getList(1, 10);

    assert.deepEqual(
      page.items.map((r) => r.title),
      ['secret'],
    );
  });

  test('clearing the auth store turns the client back into a guest that gets 403', async () => {
    const pb = await superuserClient(server.url);
    await pb.collection('locked').getList(1, 10);

    pb.authStore.clear();
    const err = await rejectionOf(() => pb.collection('locked').getList(1, 10));

    assert.equal(err.status, 403, JSON.stringify(err.response));
  });

  test('an invalid token is treated as no token: 403 on a null rule, not 401', async () => {
    const pb = guestClient(server.url);
    pb.authStore.save('not-a-real-token', null);

    const err = await rejectionOf(() => pb.collection('locked').getList(1, 10));

    assert.equal(err.status, 403, JSON.stringify(err.response));
  });

  test('a guest may list, view, create, update and delete records of a collection with empty rules', async () => {
    const guest = guestClient(server.url);

    const page = await guest.collection('open').getList(1, 10);
    const viewed = await guest.collection('open').getOne(openRecord.id);
    const created = await guest.collection('open').create({ title: 'by a guest' });
    const updated = await guest.collection('open').update(created.id, { title: 'edited by a guest' });
    const deleted = await guest.collection('open').delete(created.id);

    assert.ok(page.items.some((r) => r.id === openRecord.id));
    assert.equal(viewed.title, 'public');
    assert.match(created.id, /^[a-z0-9]{15}$/);
    assert.equal(updated.title, 'edited by a guest');
    assert.equal(deleted, true);
  });

  test('an invalid token is ignored on a collection with empty rules', async () => {
    const pb = guestClient(server.url);
    pb.authStore.save('not-a-real-token', null);

    const page = await pb.collection('open').getList(1, 10);

    assert.ok(page.items.some((r) => r.id === openRecord.id));
  });

  test('a guest may not use the collections API: 401', async () => {
    const guest = guestClient(server.url);

    const err = await rejectionOf(() => guest.collections.getList(1, 10));

    assert.ok(err instanceof ClientResponseError, `expected ClientResponseError, got ${err}`);
    assert.equal(err.status, 401, JSON.stringify(err.response));
  });
});
