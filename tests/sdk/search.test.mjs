// Full-text search and aggregation through the official SDK (Ferrobase only):
// `search` and `sort: '@rank'` pass through `getList`/`getFullList` as extra
// query parameters, and `/aggregate` is reached with `pb.send`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  guestClient,
  onPostgres,
  rejectionOf,
  sqliteOnly,
  startServer,
  superuserClient,
  testingPocketBase,
} from './helpers.mjs';

/** Full-text search answers 400 on PostgreSQL, and a searchable field is refused there. */
const FULL_TEXT = 'full-text search (searchable fields, `search`, `@rank`)';


describe('search and aggregate through the SDK', { skip: testingPocketBase && 'Ferrobase only' }, () => {
  let server;
  let pb;
  let guest;

  before(async () => {
    server = await startServer();
    pb = await superuserClient(server.url);
    guest = guestClient(server.url);
    await pb.collections.create({
      name: 'articles',
      listRule: 'published = true',
      viewRule: 'published = true',
      fields: [
        // On PostgreSQL without `searchable`, which is refused there: the
        // tests that need the index are skipped, the others still run.
        { name: 'title', type: 'text', searchable: !onPostgres, searchWeight: 3 },
        { name: 'body', type: 'editor', searchable: !onPostgres },
        { name: 'published', type: 'bool' },
        { name: 'kind', type: 'select', values: ['news', 'blog'], maxSelect: 1 },
        { name: 'words', type: 'number', onlyInt: true },
      ],
    });
    for (const [title, body, published, kind, words] of [
      ['Crème brûlée', '<p>A custard dessert</p>', true, 'blog', 120],
      ['Custard tart', '<p>Pastry and custard</p>', true, 'news', 80],
      ['Secret custard', '<p>unpublished</p>', false, 'news', 999],
    ]) {
      await pb.collection('articles').create({ title, body, published, kind, words });
    }
  });

  after(async () => {
    await server?.stop();
  });

  test('getList passes search and sort=@rank; the list rule applies', sqliteOnly(FULL_TEXT), async () => {
    const page = await guest.collection('articles').getList(1, 20, { search: 'custard', sort: '@rank' });

    assert.equal(page.totalItems, 2, 'the unpublished one stays hidden');
    assert.equal(page.items[0].title, 'Custard tart', 'a title match (weight 3) ranks first');
  });

  test('diacritics are folded and marks come back through fields', sqliteOnly(FULL_TEXT), async () => {
    const all = await guest.collection('articles').getFullList({ search: 'creme', fields: 'title:highlight' });

    assert.deepEqual(all.map((r) => r.title), ['<mark>Crème</mark> brûlée']);
  });

  test('FTS5 syntax in a search is a 400 or plain words, never a 500', async () => {
    for (const search of ['NEAR(', '"', 'title:*', 'a AND OR', '(((']) {
      try {
        await guest.collection('articles').getList(1, 5, { search });
      } catch (err) {
        assert.equal(err.status, 400, `${search}: ${err.responseJSON}`);
      }
    }
    const err = await rejectionOf(() => guest.collection('articles').getList(1, 5, { sort: '@rank' }));
    assert.equal(err.status, 400);
  });

  test('aggregate counts and sums what the caller may list', async () => {
    const query = { groupBy: 'kind', aggregate: 'count(),sum(words)', sort: 'kind' };

    const asGuest = await guest.send('/api/collections/articles/aggregate', { query });
    const asSuperuser = await pb.send('/api/collections/articles/aggregate', { query });

    assert.deepEqual(asGuest.items, [
      { kind: 'blog', count: 1, sum_words: 120 },
      { kind: 'news', count: 1, sum_words: 80 },
    ]);
    assert.deepEqual(asSuperuser.items[1], { kind: 'news', count: 2, sum_words: 1079 });
  });
});
