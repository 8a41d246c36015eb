// Collections import through the SDK (`pb.collections.import(collections, deleteMissing)`):
// an exported schema round-trips, entries match by id then name, deleteMissing drops
// the collections left out (never system ones), and a refused import changes nothing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { guestClient, rejectionOf, startServer, superuserClient } from './helpers.mjs';

describe('collections import', () => {
  let server;
  let pb;

  before(async () => {
    server = await startServer();
    pb = await superuserClient(server.url);
  });

  after(async () => {
    await server?.stop();
  });

  test('an import creates new collections and updates matched ones, keeping their records', async () => {
    const posts = await pb.collections.create({ name: 'imp_posts', fields: [{ name: 'title', type: 'text' }] });
    await pb.collection('imp_posts').create({ title: 'kept' });

    const result = await pb.collections.import(
      [
        { name: 'imp_posts', listRule: '', fields: [{ name: 'title', type: 'text' }, { name: 'body', type: 'text' }] },
        {
          name: 'imp_comments',
          type: 'base',
          fields: [{ name: 'post', type: 'relation', collectionId: posts.id, maxSelect: 1 }],
        },
        { name: 'imp_titles', type: 'view', listRule: '', viewQuery: 'select id, title from imp_posts' },
      ],
      false,
    );

    assert.equal(result, true, 'the SDK reports 204 as true');
    const after = await pb.collections.getOne('imp_posts');
    assert.equal(after.id, posts.id, 'matched by name, not recreated');
    assert.equal(after.listRule, '');
    assert.deepEqual(after.fields.map((f) => f.name).filter((n) => n !== 'id'), ['title', 'body']);
    const comments = await pb.collections.getOne('imp_comments');
    assert.equal(comments.fields.find((f) => f.name === 'post').collectionId, posts.id);
    const titles = await guestClient(server.url).collection('imp_titles').getFullList();
    assert.deepEqual(titles.map((r) => r.title), ['kept'], 'the view reads the updated table');
  });

  test('an exported schema imports back unchanged, and deleteMissing removes what it lacks', async () => {
    await pb.collections.create({ name: 'imp_extra', fields: [{ name: 'x', type: 'text' }] });
    const all = await pb.collections.getFullList();
    const exported = all.filter((c) => c.name !== 'imp_extra');

    await pb.collections.import(exported, true);

    const names = (await pb.collections.getFullList()).map((c) => c.name);
    assert.ok(!names.includes('imp_extra'), `left out, so deleted: ${names}`);
    for (const c of all.filter((c) => c.system)) {
      assert.ok(names.includes(c.name), `system collection ${c.name} stays`);
    }
    const posts = await pb.collection('imp_posts').getFullList();
    assert.deepEqual(posts.map((r) => r.title), ['kept'], 'records of imported collections stay');
  });

  test('a refused import answers 400 in the error envelope and changes nothing', async () => {
    const before = await pb.collections.getFullList();

    for (const [collections, why] of [
      [[], 'an empty list'],
      [[{ name: 'imp_new', fields: [{ name: 'a', type: 'text' }] }, { name: 'bad name' }], 'an invalid name after a good entry'],
      [[{ name: 'imp_rel', fields: [{ name: 'r', type: 'relation', collectionId: 'pbc_nothing_here' }] }], 'a relation to nothing'],
    ]) {
      const err = await rejectionOf(() => pb.collections.import(collections, true));

      assert.equal(err.status, 400, `${why}: ${err.responseJSON}`);
      assert.ok(err.response.data.collections?.code, `${why}: ${err.responseJSON}`);
    }
    assert.deepEqual(await pb.collections.getFullList(), before, 'nothing changed');
  });

  test('guests cannot import', async () => {
    const err = await rejectionOf(() =>
      guestClient(server.url).collections.import([{ name: 'imp_guest' }], false),
    );

    assert.equal(err.status, 401, err.responseJSON);
  });
});
