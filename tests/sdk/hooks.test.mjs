// `pb_hooks` and `pb_migrations` written as PocketBase's docs show them
// (fixtures/), run through the SDK. The suite also runs against the real
// PocketBase 0.40.6 (`npm run test:pocketbase`): the same files must give the
// same results on both servers.

import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { ClientResponseError } from 'pocketbase';

import { guestClient, rejectionOf, startServer, superuserClient } from './helpers.mjs';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

// Hooks and migrations, their raw SQL and query builder included, run on both engines.

describe('hooks and migrations from files', () => {
  let server;
  let pb;
  let guest;

  before(async () => {
    server = await startServer({
      hooks: path.join(FIXTURES, 'pb_hooks'),
      migrations: path.join(FIXTURES, 'pb_migrations'),
    });
    pb = await superuserClient(server.url);
    guest = guestClient(server.url);
  });
  after(async () => {
    await server?.stop();
  });

  test('the migration created its collection and seeded a record at start', async () => {
    const collection = await pb.collections.getOne('notes');
    assert.equal(collection.id, 'pbc_2000000001');
    assert.deepEqual(
      collection.fields.map((f) => [f.name, f.type]),
      [
        ['id', 'text'],
        ['title', 'text'],
        ['slug', 'text'],
      ],
    );
    assert.equal(collection.createRule, "@request.auth.id != ''");
    const seeded = await guest.collection('notes').getFullList();
    assert.deepEqual(
      seeded.map((r) => [r.title, r.slug]),
      [['Seeded by a migration', 'seeded']],
    );
  });

  test('a create hook computes a field before the record is stored', async () => {
    const created = await pb.collection('notes').create({ title: 'Hello Hooks World' });
    assert.equal(created.slug, 'hello-hooks-world');
    const stored = await guest.collection('notes').getOne(created.id);
    assert.equal(stored.slug, 'hello-hooks-world');
  });

  test('a hook that throws answers 400 with its message and stores nothing', async () => {
    const before = await pb.collection('notes').getList(1, 1);
    const err = await rejectionOf(() => pb.collection('notes').create({ title: 'A forbidden title' }));
    assert.ok(err instanceof ClientResponseError);
    assert.equal(err.status, 400);
    assert.equal(err.response.message, 'That title is not allowed.');
    const after = await pb.collection('notes').getList(1, 1);
    assert.equal(after.totalItems, before.totalItems);
  });

  test('the collection rules still apply under a hook', async () => {
    const err = await rejectionOf(() => guest.collection('notes').create({ title: 'guest note' }));
    assert.equal(err.status, 400, 'the create rule wants an authenticated caller');
  });

  test('custom routes answer, with and without requireAuth', async () => {
    assert.deepEqual(await guest.send('/api/notes-hello/ann', {}), { message: 'Hello ann' });

    const refused = await rejectionOf(() => guest.send('/api/notes-count', {}));
    assert.equal(refused.status, 401);

    const counted = await pb.send('/api/notes-count', {});
    assert.equal(counted.authed, true);
    assert.ok(counted.slugs.includes('seeded'), JSON.stringify(counted));
    assert.equal(counted.count, counted.slugs.length);
  });

  test('$app reads, $dbx expressions, DateTime and randomStringByRegex answer alike', async () => {
    const stats = await guest.send('/api/notes-stats', { query: { title: "Seeded by a migration' OR 1=1 --" } });
    assert.ok(stats.total >= 1, JSON.stringify(stats));
    assert.equal(stats.seededCount, 1);
    assert.equal(stats.sameTitle, 0, 'the value is bound, never SQL');
    assert.deepEqual(stats.liked, ['seeded']);
    assert.equal(stats.seededTitle, 'Seeded by a migration');
    assert.equal(stats.date, '2024-01-31 10:00:00.000Z');
    assert.match(stats.code, /^[A-Z]{3}-\d{4}$/);
  });

  test('batch members run their request hooks; one that throws fails the whole batch', async () => {
    await pb.settings.update({ batch: { enabled: true } });
    const before = await pb.collection('notes').getList(1, 1);

    const ok = pb.createBatch();
    ok.collection('notes').create({ title: 'Batch One' });
    ok.collection('notes').create({ title: 'Batch Two' });
    const results = await ok.send();
    const refused = pb.createBatch();
    refused.collection('notes').create({ title: 'Batch Three' });
    refused.collection('notes').create({ title: 'A forbidden batch title' });
    const err = await rejectionOf(() => refused.send());

    assert.deepEqual(
      results.map((r) => [r.status, r.body.slug]),
      [
        [200, 'batch-one'],
        [200, 'batch-two'],
      ],
    );
    assert.equal(err.status, 400);
    assert.equal(err.response.message, 'Batch transaction failed.');
    assert.deepEqual(err.response.data.requests, {
      1: {
        code: 'batch_request_failed',
        message: 'Batch request failed.',
        response: { status: 400, message: 'That title is not allowed.', data: {} },
      },
    });
    const after = await pb.collection('notes').getList(1, 1);
    assert.equal(after.totalItems, before.totalItems + 2, 'only the first batch was kept');
  });

  test('onBatchRequest changes a request of the batch, and its throw refuses the whole batch', async () => {
    await pb.settings.update({ batch: { enabled: true } });
    const before = await pb.collection('notes').getList(1, 1);

    const ok = pb.createBatch();
    ok.collection('notes').create({ title: '[batch-hook] note' });
    const results = await ok.send();
    const refused = pb.createBatch();
    refused.collection('notes').create({ title: 'Kept out' });
    refused.collection('notes').create({ title: '[batch-hook] refuse this' });
    const err = await rejectionOf(() => refused.send());

    assert.deepEqual(
      results.map((r) => [r.status, r.body.title, r.body.slug]),
      [[200, 'Stamped note', 'stamped-note']],
    );
    assert.equal(err.status, 400);
    assert.equal(err.response.message, 'The batch hook refused it.');
    const after = await pb.collection('notes').getList(1, 1);
    assert.equal(after.totalItems, before.totalItems + 1, 'the refused batch wrote nothing');
  });

  test('a ValidationError in a thrown error keeps its code and message', async () => {
    const err = await rejectionOf(() => guest.send('/api/notes-validate', { method: 'POST' }));
    assert.equal(err.status, 400);
    assert.deepEqual(err.response, {
      status: 400,
      message: 'Invalid note.',
      data: { title: { code: 'invalid_title', message: 'Title is not valid.' } },
    });
  });
});
