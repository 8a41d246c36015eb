// Realtime through the official SDK: `subscribe('*')` and `subscribe(id)`
// receive creates, updates and deletes after they commit, a user never
// receives a record the collection's rule hides from them, and
// `unsubscribe` stops the events (and, with nothing left, the connection).
//
// Node 20 has no global EventSource; the SDK needs one, so the `eventsource`
// package provides it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { EventSource } from 'eventsource';

import { guestClient, startServer, superuserClient } from './helpers.mjs';

globalThis.EventSource = EventSource;

/** How long to wait for an event that should come. */
const EVENT_TIMEOUT_MS = 5_000;

/** Polls `ready` until it returns true or the timeout passes. */
async function waitFor(ready, what) {
  const deadline = Date.now() + EVENT_TIMEOUT_MS;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Subscribes `pb` to `topic` of `collection`, collecting (action, title) pairs. */
async function listen(pb, collection, topic, options) {
  const events = [];
  const unsubscribe = await pb.collection(collection).subscribe(
    topic,
    (e) => events.push({ action: e.action, record: e.record }),
    options,
  );
  return { events, unsubscribe, seen: () => events.map((e) => [e.action, e.record.title]) };
}

const PASSWORD = 'Passw0rd!123';

describe('realtime subscriptions', () => {
  let server;
  let admin;
  let alice;
  let bob;
  const clients = [];

  /** A client logged in as `email` (closed after the suite). */
  async function userClient(email) {
    const pb = guestClient(server.url);
    await pb.collection('users').authWithPassword(email, PASSWORD);
    clients.push(pb);
    return pb;
  }

  before(async () => {
    server = await startServer();
    admin = await superuserClient(server.url);
    clients.push(admin);
    await admin.collections.create({
      name: 'posts',
      listRule: 'owner = @request.auth.id || public = true',
      viewRule: 'owner = @request.auth.id || public = true',
      fields: [
        { name: 'title', type: 'text' },
        { name: 'public', type: 'bool' },
        { name: 'owner', type: 'relation', collectionId: '_pb_users_auth_', maxSelect: 1 },
        { name: 'secret', type: 'text', hidden: true },
      ],
    });
    for (const name of ['alice', 'bob']) {
      await admin.collection('users').create({
        email: `${name}@example.com`,
        password: PASSWORD,
        passwordConfirm: PASSWORD,
      });
    }
    alice = await userClient('alice@example.com');
    bob = await userClient('bob@example.com');
  });

  after(async () => {
    for (const pb of clients) pb.realtime.unsubscribe();
    await server?.stop();
  });

  test("subscribe('*') receives create, update and delete in commit order", async () => {
    const sub = await listen(admin, 'posts', '*');

    const post = await admin.collection('posts').create({ title: 'one', secret: 's' });
    await admin.collection('posts').update(post.id, { title: 'two' });
    await admin.collection('posts').delete(post.id);
    await waitFor(() => sub.events.length >= 3, 'three events');
    await sub.unsubscribe();

    assert.deepEqual(sub.seen(), [
      ['create', 'one'],
      ['update', 'two'],
      ['delete', 'two'],
    ]);
    assert.equal(sub.events[0].record.id, post.id);
    assert.equal(sub.events[0].record.collectionName, 'posts');
    assert.equal(sub.events[0].record.secret, 's', 'superusers see hidden fields');
  });

  test('subscribe(id) receives changes to that record only', async () => {
    const watched = await admin.collection('posts').create({ title: 'watched', public: true });
    const other = await admin.collection('posts').create({ title: 'other', public: true });
    const guest = guestClient(server.url);
    clients.push(guest);
    const sub = await listen(guest, 'posts', watched.id);

    await admin.collection('posts').update(other.id, { title: 'other 2' });
    await admin.collection('posts').update(watched.id, { title: 'watched 2' });
    await admin.collection('posts').delete(watched.id);
    await waitFor(() => sub.events.length >= 2, 'two events');
    await sub.unsubscribe();

    assert.deepEqual(sub.seen(), [
      ['update', 'watched 2'],
      ['delete', 'watched 2'],
    ]);
  });

  test('a user never receives records the list rule hides from them', async () => {
    const aliceSub = await listen(alice, 'posts', '*');
    const bobSub = await listen(bob, 'posts', '*');
    const aliceId = alice.authStore.record.id;
    const bobId = bob.authStore.record.id;

    await admin.collection('posts').create({ title: "alice's", owner: aliceId, secret: 'x' });
    await admin.collection('posts').create({ title: "bob's", owner: bobId });
    // Events reach each client in commit order: once this one arrived, any
    // earlier event for that client has arrived too.
    await admin.collection('posts').create({ title: 'sentinel', public: true });
    await waitFor(
      () => aliceSub.events.some((e) => e.record.title === 'sentinel') &&
        bobSub.events.some((e) => e.record.title === 'sentinel'),
      'the sentinel on both clients',
    );
    await aliceSub.unsubscribe();
    await bobSub.unsubscribe();

    assert.deepEqual(aliceSub.seen(), [
      ['create', "alice's"],
      ['create', 'sentinel'],
    ]);
    assert.deepEqual(bobSub.seen(), [
      ['create', "bob's"],
      ['create', 'sentinel'],
    ]);
    assert.equal(aliceSub.events[0].record.secret, undefined, 'hidden fields stay hidden');
  });

  test('subscription options (fields) shape the record', async () => {
    const sub = await listen(alice, 'posts', '*', { fields: 'id,title' });

    const post = await admin.collection('posts').create({ title: 'shaped', public: true });
    await waitFor(() => sub.events.length >= 1, 'one event');
    await sub.unsubscribe();

    assert.deepEqual(sub.events[0].record, { id: post.id, title: 'shaped' });
  });

  test('unsubscribe stops the events and, with nothing left, the connection', async () => {
    const guest = guestClient(server.url);
    clients.push(guest);
    const first = await listen(guest, 'posts', '*');
    const second = await listen(guest, 'posts', '*');
    await admin.collection('posts').create({ title: 'before', public: true });
    await waitFor(() => first.events.length >= 1 && second.events.length >= 1, 'the first event');

    await first.unsubscribe();
    await admin.collection('posts').create({ title: 'after', public: true });
    await waitFor(() => second.events.length >= 2, 'the second event on the remaining listener');
    await guest.collection('posts').unsubscribe();

    assert.deepEqual(first.seen(), [['create', 'before']]);
    assert.deepEqual(second.seen(), [
      ['create', 'before'],
      ['create', 'after'],
    ]);
    assert.equal(guest.realtime.isConnected, false, 'no subscriptions left: disconnected');
  });
});
