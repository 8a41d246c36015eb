// Collections API through the SDK (`pb.collections.*`): create with every field
// type, read back by name and id, list, update (add and rename fields), delete.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';

import { ClientResponseError } from 'pocketbase';

import { rejectionOf, startServer, superuserClient } from './helpers.mjs';

/** Fields of every type, each with some non-default options; relations point at `tagsId`. */
function everyFieldType(tagsId) {
  return [
    { name: 'title', type: 'text', required: true, min: 1, max: 100, pattern: '^[^!]*$', presentable: true },
    { name: 'body', type: 'editor', maxSize: 10000, convertURLs: true },
    { name: 'num', type: 'number', min: -10, max: 1000, onlyInt: false },
    { name: 'flag', type: 'bool', help: 'a toggle' },
    { name: 'mail', type: 'email', onlyDomains: ['example.com'] },
    { name: 'site', type: 'url', exceptDomains: ['evil.test'] },
    { name: 'when', type: 'date', min: '2000-01-01 00:00:00.000Z', max: '' },
    { name: 'created', type: 'autodate', onCreate: true, onUpdate: false },
    { name: 'updated', type: 'autodate', onCreate: true, onUpdate: true },
    { name: 'status', type: 'select', values: ['draft', 'published'], maxSelect: 1 },
    { name: 'cats', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
    { name: 'meta', type: 'json', maxSize: 2000 },
    { name: 'tag', type: 'relation', collectionId: tagsId, maxSelect: 1, cascadeDelete: false },
    { name: 'tagsMany', type: 'relation', collectionId: tagsId, minSelect: 0, maxSelect: 5, cascadeDelete: true },
    {
      name: 'doc',
      type: 'file',
      maxSelect: 1,
      maxSize: 1048576,
      mimeTypes: ['application/pdf'],
      thumbs: [],
      protected: true,
    },
    { name: 'secret', type: 'password', min: 8, max: 64, cost: 10, hidden: true },
    { name: 'loc', type: 'geoPoint', help: 'where it is' },
  ];
}

/** Keys every non-system field carries besides its type-specific options. */
const COMMON_FIELD_KEYS = ['hidden', 'id', 'name', 'presentable', 'system', 'type'];

describe('collections API', () => {
  let server;
  let pb;
  let tags;
  let kitchen;

  before(async () => {
    server = await startServer();
    pb = await superuserClient(server.url);
    tags = await pb.collections.create({ name: 'tags', type: 'base', fields: [{ name: 'label', type: 'text' }] });
    kitchen = await pb.collections.create({ name: 'kitchen', type: 'base', fields: everyFieldType(tags.id) });
  });

  after(async () => {
    await server?.stop();
  });

  test('a base collection created with every field type comes back with the id field first and each field in order', () => {
    const names = kitchen.fields.map((f) => f.name);

    assert.deepEqual(names, ['id', ...everyFieldType(tags.id).map((f) => f.name)]);
    assert.equal(kitchen.name, 'kitchen');
    assert.equal(kitchen.type, 'base');
    assert.equal(kitchen.system, false);
    assert.deepEqual(kitchen.indexes, []);
    for (const rule of ['listRule', 'viewRule', 'createRule', 'updateRule', 'deleteRule']) {
      assert.equal(kitchen[rule], null, `${rule} defaults to null (superusers only)`);
    }
    assert.match(kitchen.created, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  test('every field keeps the options it was created with', () => {
    const byName = new Map(kitchen.fields.map((f) => [f.name, f]));

    for (const sent of everyFieldType(tags.id)) {
      const got = byName.get(sent.name);
      assert.ok(got, `field ${sent.name} is missing`);
      for (const [key, value] of Object.entries(sent)) {
        assert.deepEqual(got[key], value, `${sent.type} field ${sent.name}: option ${key}`);
      }
      for (const key of COMMON_FIELD_KEYS) {
        assert.ok(key in got, `${sent.type} field ${sent.name} lacks ${key}: ${JSON.stringify(got)}`);
      }
      assert.equal(got.system, false, `field ${sent.name} is not a system field`);
    }
  });

  test('options that were not sent are filled in with their defaults', () => {
    const byName = new Map(kitchen.fields.map((f) => [f.name, f]));

    for (const [name, defaults] of [
      ['title', { autogeneratePattern: '', primaryKey: false, help: '', hidden: false }],
      ['num', { required: false, help: '' }],
      ['mail', { exceptDomains: [] }],
      ['site', { onlyDomains: [] }],
      ['tag', { minSelect: 0, required: false }],
      ['secret', { pattern: '' }],
      ['loc', { required: false, hidden: false, presentable: false }],
    ]) {
      for (const [key, value] of Object.entries(defaults)) {
        assert.deepEqual(byName.get(name)[key], value, `field ${name}: default of ${key}`);
      }
    }
  });

  test('the system id field is a 15 character lowercase alphanumeric primary key', () => {
    const id = kitchen.fields[0];

    assert.deepEqual(
      { name: id.name, type: id.type, system: id.system, primaryKey: id.primaryKey, required: id.required },
      { name: 'id', type: 'text', system: true, primaryKey: true, required: true },
    );
    assert.equal(id.min, 15);
    assert.equal(id.max, 15);
    assert.equal(id.pattern, '^[a-z0-9]+$');
    assert.equal(id.autogeneratePattern, '[a-z0-9]{15}');
  });

  test('collection and field ids are derived from crc32 of type and name like PocketBase does', () => {
    assert.equal(kitchen.id, `pbc_${crc32('basekitchen')}`);
    for (const field of kitchen.fields) {
      assert.equal(field.id, `${field.type}${crc32(field.name)}`, `id of field ${field.name}`);
    }
  });

  test('a collection created with only a name has just the id field and no autodate fields', async () => {
    const bare = await pb.collections.create({ name: 'bare' });

    assert.equal(bare.type, 'base');
    assert.deepEqual(
      bare.fields.map((f) => f.name),
      ['id'],
    );
  });

  test('getOne by name returns the same collection as create did', async () => {
    const got = await pb.collections.getOne('kitchen');

    assert.deepEqual(got, kitchen);
  });

  test('getOne by id returns the same collection as create did', async () => {
    const got = await pb.collections.getOne(kitchen.id);

    assert.deepEqual(got, kitchen);
  });

  test('getList of collections is paginated with real totals', async () => {
    const all = await pb.collections.getList(1, 100);
    const firstTwo = await pb.collections.getList(1, 2);
    const pastTheEnd = await pb.collections.getList(all.totalItems + 1, 1);

    const names = all.items.map((c) => c.name);
    for (const name of ['_superusers', 'tags', 'kitchen']) {
      assert.ok(names.includes(name), `${name} missing from ${names}`);
    }
    assert.equal(all.page, 1);
    assert.equal(all.perPage, 100);
    assert.equal(all.totalItems, all.items.length);
    assert.equal(all.totalPages, 1);
    assert.equal(firstTwo.items.length, 2);
    assert.equal(firstTwo.perPage, 2);
    assert.equal(firstTwo.totalItems, all.totalItems);
    assert.equal(firstTwo.totalPages, Math.ceil(all.totalItems / 2));
    assert.deepEqual(pastTheEnd.items, []);
    assert.equal(pastTheEnd.totalItems, all.totalItems);
  });

  test('a fresh data dir has the system collections PocketBase creates, with their fixed ids', async () => {
    const all = await pb.collections.getFullList();

    const byName = Object.fromEntries(all.map((c) => [c.name, { id: c.id, type: c.type, system: c.system }]));
    assert.deepEqual(
      {
        _superusers: byName._superusers,
        users: byName.users,
        _mfas: byName._mfas,
        _otps: byName._otps,
        _externalAuths: byName._externalAuths,
        _authOrigins: byName._authOrigins,
      },
      {
        _superusers: { id: 'pbc_3142635823', type: 'auth', system: true },
        users: { id: '_pb_users_auth_', type: 'auth', system: false },
        _mfas: { id: 'pbc_2279338944', type: 'base', system: true },
        _otps: { id: 'pbc_1638494021', type: 'base', system: true },
        _externalAuths: { id: 'pbc_2281828961', type: 'base', system: true },
        _authOrigins: { id: 'pbc_4275539003', type: 'base', system: true },
      },
    );
  });

  test('a collection name that differs only in case from an existing one is rejected', async () => {
    const err = await rejectionOf(() => pb.collections.create({ name: 'KITCHEN' }));

    assert.ok(err instanceof ClientResponseError, `expected ClientResponseError, got ${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.response.data.name?.code, 'validation_collection_name_exists', JSON.stringify(err.response));
  });

  test('updating a collection can add a field and rename another while keeping ids and record data', async () => {
    const coll = await pb.collections.create({
      name: 'evolving',
      fields: [
        { name: 'flag', type: 'bool' },
        { name: 'label', type: 'text', max: 20 },
      ],
    });
    const record = await pb.collection('evolving').create({ flag: true, label: 'kept' });
    const flagId = coll.fields.find((f) => f.name === 'flag').id;

    const updated = await pb.collections.update('evolving', {
      listRule: '',
      fields: [
        ...coll.fields.map((f) => (f.name === 'flag' ? { ...f, name: 'flagged' } : f)),
        { name: 'extra', type: 'number', onlyInt: true },
      ],
    });
    const reread = await pb.collection('evolving').getOne(record.id);

    assert.deepEqual(
      updated.fields.map((f) => f.name),
      ['id', 'flagged', 'label', 'extra'],
    );
    assert.equal(updated.fields.find((f) => f.name === 'flagged').id, flagId, 'renaming keeps the field id');
    assert.equal(updated.fields.find((f) => f.name === 'extra').onlyInt, true);
    assert.equal(updated.listRule, '');
    assert.equal(updated.id, coll.id);
    assert.equal(reread.flagged, true, 'the renamed column keeps its data');
    assert.equal('flag' in reread, false, 'the old name is gone');
    assert.equal(reread.label, 'kept');
    assert.equal(reread.extra, 0, 'a new number field reads as 0 on existing records');
  });

  test('updating a collection with a fields list that omits a field drops that field', async () => {
    const coll = await pb.collections.create({
      name: 'shrinking',
      fields: [
        { name: 'keep', type: 'text' },
        { name: 'drop', type: 'text' },
      ],
    });

    const updated = await pb.collections.update(coll.id, { fields: coll.fields.filter((f) => f.name !== 'drop') });

    assert.deepEqual(
      updated.fields.map((f) => f.name),
      ['id', 'keep'],
    );
  });

  test('a deleted collection is gone from getOne and getList', async () => {
    const doomed = await pb.collections.create({ name: 'doomed', fields: [{ name: 'x', type: 'text' }] });

    const deleted = await pb.collections.delete(doomed.id);
    const err = await rejectionOf(() => pb.collections.getOne('doomed'));
    const list = await pb.collections.getList(1, 100);

    assert.equal(deleted, true);
    assert.equal(err.status, 404);
    assert.equal(
      list.items.some((c) => c.name === 'doomed'),
      false,
    );
  });
});
