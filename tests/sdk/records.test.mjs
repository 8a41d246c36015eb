// Record CRUD and listing through the SDK (`pb.collection(name).*`): JSON types of
// every field on the way back, partial updates, delete, pagination, getFullList,
// sort, skipTotal and fields.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { rejectionOf, startServer, superuserClient, testingPocketBase } from './helpers.mjs';

const DATE_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ID_RE = /^[a-z0-9]{15}$/;
const ROW_COUNT = 25;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('records API', () => {
  let server;
  let pb;
  let tags;
  let items;
  let tagA;
  let tagB;

  before(async () => {
    server = await startServer();
    pb = await superuserClient(server.url);
    tags = await pb.collections.create({ name: 'tags', fields: [{ name: 'label', type: 'text' }] });
    items = await pb.collections.create({
      name: 'items',
      fields: [
        { name: 'title', type: 'text', required: true },
        { name: 'body', type: 'editor' },
        { name: 'num', type: 'number' },
        { name: 'flag', type: 'bool' },
        { name: 'mail', type: 'email' },
        { name: 'site', type: 'url' },
        { name: 'when', type: 'date' },
        { name: 'status', type: 'select', values: ['draft', 'published'], maxSelect: 1 },
        { name: 'cats', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
        { name: 'meta', type: 'json' },
        { name: 'tag', type: 'relation', collectionId: tags.id, maxSelect: 1 },
        { name: 'tagsMany', type: 'relation', collectionId: tags.id, maxSelect: 5 },
        { name: 'doc', type: 'file', maxSelect: 1 },
        { name: 'secret', type: 'password' },
        { name: 'loc', type: 'geoPoint' },
        { name: 'created', type: 'autodate', onCreate: true, onUpdate: false },
        { name: 'updated', type: 'autodate', onCreate: true, onUpdate: true },
      ],
    });
    tagA = await pb.collection('tags').create({ label: 'a' });
    tagB = await pb.collection('tags').create({ label: 'b' });

    await pb.collections.create({
      name: 'loose',
      fields: [
        { name: 'num', type: 'number' },
        { name: 'flag', type: 'bool' },
        { name: 'when', type: 'date' },
        { name: 'status', type: 'select', values: ['a', 'b'], maxSelect: 1 },
        { name: 'cats', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
        { name: 'tag', type: 'relation', collectionId: tags.id, maxSelect: 1 },
        { name: 'meta', type: 'json' },
      ],
    });

    await pb.collections.create({
      name: 'rows',
      fields: [
        { name: 'title', type: 'text' },
        { name: 'num', type: 'number' },
        { name: 'odd', type: 'bool' },
      ],
    });
    // num follows insertion order; title (7·i mod 25) does not, so sorting by
    // title is distinguishable from both insertion order and sorting by num.
    for (let i = 0; i < ROW_COUNT; i++) {
      const title = `t${String((i * 7) % ROW_COUNT).padStart(2, '0')}`;
      await pb.collection('rows').create({ title, num: i, odd: i % 2 === 1 });
    }
  });

  after(async () => {
    await server?.stop();
  });

  function fullItem() {
    return {
      title: 'Hello',
      body: '<p>hi <b>there</b></p>',
      num: 3.5,
      flag: true,
      mail: 'someone@example.com',
      site: 'https://example.com/x',
      when: '2024-01-02 03:04:05',
      status: 'draft',
      cats: ['a', 'c'],
      meta: { x: 1, nested: { list: [1, 'two', null] } },
      tag: tagA.id,
      tagsMany: [tagA.id, tagB.id],
      secret: 'supersecret',
      loc: { lon: 23.3, lat: 42.7 },
    };
  }

  test('create returns the record with a generated 15 character id and its collection id and name', async () => {
    const record = await pb.collection('items').create(fullItem());

    assert.match(record.id, ID_RE);
    assert.equal(record.collectionId, items.id);
    assert.equal(record.collectionName, 'items');
  });

  test('create round-trips every field value with its JSON type', async () => {
    const record = await pb.collection('items').create(fullItem());

    assert.equal(record.title, 'Hello');
    assert.equal(record.body, '<p>hi <b>there</b></p>');
    assert.equal(record.num, 3.5);
    assert.equal(record.flag, true);
    assert.equal(record.mail, 'someone@example.com');
    assert.equal(record.site, 'https://example.com/x');
    assert.equal(record.when, '2024-01-02 03:04:05.000Z');
    assert.equal(record.status, 'draft');
    assert.deepEqual(record.cats, ['a', 'c']);
    assert.deepEqual(record.meta, { x: 1, nested: { list: [1, 'two', null] } });
    assert.equal(record.tag, tagA.id);
    assert.deepEqual(record.tagsMany, [tagA.id, tagB.id]);
    assert.equal(record.doc, '');
    assert.equal(record.secret, '', 'password fields are never serialized with their value');
    assert.deepEqual(record.loc, { lon: 23.3, lat: 42.7 });
    assert.match(record.created, DATE_RE);
    assert.match(record.updated, DATE_RE);
    assert.equal(record.created, record.updated);
    assert.equal('expand' in record, false, 'expand appears only when requested');
  });

  test('a record created with only the required field has the zero value of every other field', async () => {
    const record = await pb.collection('items').create({ title: 'minimal' });

    assert.deepEqual(
      {
        body: record.body,
        num: record.num,
        flag: record.flag,
        mail: record.mail,
        site: record.site,
        when: record.when,
        status: record.status,
        cats: record.cats,
        meta: record.meta,
        tag: record.tag,
        tagsMany: record.tagsMany,
        doc: record.doc,
        secret: record.secret,
        loc: record.loc,
      },
      {
        body: '',
        num: 0,
        flag: false,
        mail: '',
        site: '',
        when: '',
        status: '',
        cats: [],
        meta: null,
        tag: '',
        tagsMany: [],
        doc: '',
        secret: '',
        loc: { lon: 0, lat: 0 },
      },
    );
  });

  test('dates given in RFC 3339 with an offset are stored as UTC with milliseconds', async () => {
    const record = await pb.collection('items').create({ title: 'dated', when: '2024-06-30T23:30:00.123456+02:00' });

    assert.equal(record.when, '2024-06-30 21:30:00.123Z');
  });

  test('getOne returns the record exactly as create returned it', async () => {
    const created = await pb.collection('items').create(fullItem());

    const got = await pb.collection('items').getOne(created.id);

    assert.deepEqual(got, created);
  });

  test('update changes only the fields it is given and bumps updated but not created', async () => {
    const created = await pb.collection('items').create(fullItem());
    await sleep(5); // so that a bumped `updated` differs from `created`

    const updated = await pb.collection('items').update(created.id, { num: 42, cats: ['b'], meta: { y: true } });
    const reread = await pb.collection('items').getOne(created.id);

    const { num, cats, meta, updated: updatedAt, ...rest } = updated;
    const { num: _n, cats: _c, meta: _m, updated: _u, ...restBefore } = created;
    assert.equal(num, 42);
    assert.deepEqual(cats, ['b']);
    assert.deepEqual(meta, { y: true });
    assert.deepEqual(rest, restBefore, 'fields not in the update are unchanged');
    assert.match(updatedAt, DATE_RE);
    assert.ok(updatedAt > created.updated, `updated ${updatedAt} must move past ${created.updated}`);
    assert.equal(updated.created, created.created);
    assert.deepEqual(reread, updated, 'getOne sees the update');
  });

  test('delete removes the record so that getOne answers 404', async () => {
    const created = await pb.collection('items').create({ title: 'short-lived' });

    const deleted = await pb.collection('items').delete(created.id);
    const err = await rejectionOf(() => pb.collection('items').getOne(created.id));

    assert.equal(deleted, true);
    assert.equal(err.status, 404);
  });

  test('a client-supplied 15 character id is kept', async () => {
    const record = await pb.collection('items').create({ id: 'clientchosenid1', title: 'mine' });

    assert.equal(record.id, 'clientchosenid1');
    assert.equal((await pb.collection('items').getOne('clientchosenid1')).title, 'mine');
  });

  test('autodate fields ignore values sent by the client, even by a superuser', async () => {
    const stale = '2000-01-01 00:00:00.000Z';

    const record = await pb.collection('items').create({ title: 'dated', created: stale, updated: stale });
    const updated = await pb.collection('items').update(record.id, { created: stale, updated: stale });

    assert.notEqual(record.created, stale);
    assert.notEqual(record.updated, stale);
    assert.equal(updated.created, record.created);
    assert.notEqual(updated.updated, stale);
  });

  test('an update with an empty body still bumps updated', async () => {
    const record = await pb.collection('items').create({ title: 'touched' });
    await sleep(5);

    const updated = await pb.collection('items').update(record.id, {});

    assert.ok(updated.updated > record.updated, `updated ${updated.updated} must move past ${record.updated}`);
    assert.equal(updated.title, 'touched');
  });

  test('number modifiers add and subtract and multi select modifiers append and remove', async () => {
    const record = await pb.collection('loose').create({ num: 10, cats: ['a'] });

    const added = await pb.collection('loose').update(record.id, { 'num+': 5, 'cats+': ['b', 'a'] });
    const removed = await pb.collection('loose').update(record.id, { 'num-': 2, 'cats-': 'a' });

    assert.equal(added.num, 15);
    assert.deepEqual(added.cats, ['a', 'b'], 'append skips values already present');
    assert.equal(removed.num, 13);
    assert.deepEqual(removed.cats, ['b']);
  });

  test('a numeric string sent to a number field is stored as a number', async () => {
    const a = await pb.collection('loose').create({ num: '12' });
    const b = await pb.collection('loose').create({ num: '-1.5' });

    assert.equal(a.num, 12);
    assert.equal(b.num, -1.5);
  });

  test('null sent to a number field is stored as 0', async () => {
    const record = await pb.collection('loose').create({ num: null });

    assert.equal(record.num, 0);
  });

  test('"true" and "1" are true and "false" is false in a bool field', async () => {
    const values = [];
    for (const flag of ['true', '1', 'false', '0']) {
      values.push((await pb.collection('loose').create({ flag })).flag);
    }

    assert.deepEqual(values, [true, true, false, false]);
  });

  // PocketBase stores 0 / false / "" / the last id for these; Ferrobase refuses
  // to lose what the client sent and answers 400 with a field error.
  for (const [body, field, pbValue, code] of [
    [{ num: 'abc' }, 'num', 0, 'validation_invalid_number'],
    [{ flag: 'yes' }, 'flag', false, 'validation_invalid_bool'],
    [{ when: 'garbage' }, 'when', '', 'validation_invalid_date'],
  ]) {
    test(`${JSON.stringify(body)} is refused with ${code} instead of being stored as ${JSON.stringify(pbValue)}`, async () => {
      if (testingPocketBase) {
        const record = await pb.collection('loose').create(body);
        assert.deepEqual(record[field], pbValue, 'the oracle mangles the value');
        return;
      }
      const err = await rejectionOf(() => pb.collection('loose').create(body));

      assert.equal(err.status, 400);
      assert.equal(err.response.data[field].code, code);
    });
  }

  test('duplicate values sent to a multi select are removed', async () => {
    const record = await pb.collection('loose').create({ cats: ['a', 'a', 'b'] });

    assert.deepEqual(record.cats, ['a', 'b']);
  });

  test('a one-element array sent to a single select is stored as its value', async () => {
    const record = await pb.collection('loose').create({ status: ['b'] });

    assert.equal(record.status, 'b');
  });

  test('an array of several ids sent to a single relation is refused instead of keeping only the last', async () => {
    if (testingPocketBase) {
      const record = await pb.collection('loose').create({ tag: [tagA.id, tagB.id] });
      assert.equal(record.tag, tagB.id, 'the oracle drops the first id');
      return;
    }
    const err = await rejectionOf(() => pb.collection('loose').create({ tag: [tagA.id, tagB.id] }));

    assert.equal(err.status, 400);
    assert.equal(err.response.data.tag.code, 'validation_too_many_values');
  });

  test('a json field stores any JSON value, including a bare string and a number', async () => {
    const a = await pb.collection('loose').create({ meta: 'just a string' });
    const b = await pb.collection('loose').create({ meta: 0 });
    const c = await pb.collection('loose').create({ meta: [1, { two: 2 }] });

    assert.equal(a.meta, 'just a string');
    assert.equal(b.meta, 0);
    assert.deepEqual(c.meta, [1, { two: 2 }]);
  });

  test('a date-only value is stored as midnight UTC', async () => {
    const record = await pb.collection('loose').create({ when: '2024-01-02' });

    assert.equal(record.when, '2024-01-02 00:00:00.000Z');
  });

  test('unknown keys in the body are ignored', async () => {
    const record = await pb.collection('loose').create({ num: 1, notAField: 'x' });

    assert.equal('notAField' in record, false);
    assert.equal(record.num, 1);
  });

  test('getList pages through 25 records ten at a time with real totals', async () => {
    const pages = [];
    for (const page of [1, 2, 3]) pages.push(await pb.collection('rows').getList(page, 10));

    assert.deepEqual(
      pages.map((p) => [p.page, p.perPage, p.totalItems, p.totalPages, p.items.length]),
      [
        [1, 10, 25, 3, 10],
        [2, 10, 25, 3, 10],
        [3, 10, 25, 3, 5],
      ],
    );
    const ids = pages.flatMap((p) => p.items.map((r) => r.id));
    assert.equal(new Set(ids).size, ROW_COUNT, 'pages do not overlap');
    assert.deepEqual(
      pages.flatMap((p) => p.items.map((r) => r.num)),
      [...Array(ROW_COUNT).keys()],
      'without sort, records come in insertion order',
    );
  });

  test('a page past the end is empty but still reports the real totals', async () => {
    const page = await pb.collection('rows').getList(4, 10);

    assert.deepEqual(page, { page: 4, perPage: 10, totalItems: 25, totalPages: 3, items: [] });
  });

  test('getList without arguments uses page 1 and 30 per page', async () => {
    const page = await pb.collection('rows').getList();

    assert.equal(page.page, 1);
    assert.equal(page.perPage, 30);
    assert.equal(page.items.length, ROW_COUNT);
    assert.equal(page.totalPages, 1);
  });

  test('perPage above 1000 is clamped to 1000 and zero or negative falls back to 30', async () => {
    const big = await pb.collection('rows').getList(1, 5000, { fields: 'id' });
    const zero = await pb.collection('rows').getList(1, 0, { fields: 'id' });
    const negative = await pb.collection('rows').getList(1, -3, { fields: 'id' });

    assert.equal(big.perPage, 1000);
    assert.equal(zero.perPage, 30);
    assert.equal(negative.perPage, 30);
    assert.equal(big.items.length, ROW_COUNT);
  });

  test('page 0 is treated as page 1', async () => {
    const page = await pb.collection('rows').getList(0, 10, { fields: 'id' });

    assert.equal(page.page, 1);
    assert.equal(page.items.length, 10);
  });

  test('getList of an empty collection has zero total pages', async () => {
    await pb.collections.create({ name: 'empty', fields: [{ name: 'x', type: 'text' }] });

    const page = await pb.collection('empty').getList(1, 10);

    assert.deepEqual(page, { page: 1, perPage: 10, totalItems: 0, totalPages: 0, items: [] });
  });

  test('getFullList with a batch smaller than the count fetches every record over several requests', async () => {
    const seen = [];
    const client = await superuserClient(server.url);
    client.beforeSend = (url, options) => {
      // The SDK adds options.query to the URL after this hook runs.
      seen.push(options.query ?? {});
      return { url, options };
    };

    const all = await client.collection('rows').getFullList({ batch: 7 });

    assert.equal(all.length, ROW_COUNT);
    assert.equal(new Set(all.map((r) => r.id)).size, ROW_COUNT);
    assert.deepEqual(
      seen.map((q) => q.page),
      [1, 2, 3, 4],
      'the SDK stops after the first short page (7+7+7+4)',
    );
    assert.ok(
      seen.every((q) => q.perPage === 7),
      'every request asks for the batch size',
    );
  });

  test('sort by -num returns records in descending number order', async () => {
    const page = await pb.collection('rows').getList(1, 30, { sort: '-num' });

    assert.deepEqual(
      page.items.map((r) => r.num),
      [...Array(ROW_COUNT).keys()].reverse(),
    );
  });

  test('sort by title returns records in ascending title order', async () => {
    const page = await pb.collection('rows').getList(1, 30, { sort: 'title' });

    const titles = page.items.map((r) => r.title);
    assert.deepEqual(titles, [...titles].sort());
    assert.equal(titles[0], 't00');
    assert.equal(titles[ROW_COUNT - 1], 't24');
  });

  test('sort by two keys orders by the first and breaks ties with the second', async () => {
    const page = await pb.collection('rows').getList(1, 30, { sort: '-odd,num' });

    const odds = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23];
    const evens = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24];
    assert.deepEqual(
      page.items.map((r) => r.num),
      [...odds, ...evens],
    );
  });

  test('sort applies before pagination', async () => {
    const page = await pb.collection('rows').getList(2, 10, { sort: '-num' });

    assert.deepEqual(
      page.items.map((r) => r.num),
      [14, 13, 12, 11, 10, 9, 8, 7, 6, 5],
    );
  });

  test('skipTotal reports -1 for totalItems and totalPages but still returns the page', async () => {
    const page = await pb.collection('rows').getList(1, 10, { skipTotal: true });

    assert.equal(page.totalItems, -1);
    assert.equal(page.totalPages, -1);
    assert.equal(page.page, 1);
    assert.equal(page.perPage, 10);
    assert.equal(page.items.length, 10);
  });

  test('fields limits each listed record to the requested keys and keeps the pagination keys', async () => {
    const page = await pb.collection('rows').getList(1, 5, { fields: 'id,title' });

    assert.deepEqual(Object.keys(page).sort(), ['items', 'page', 'perPage', 'totalItems', 'totalPages']);
    assert.equal(page.totalItems, ROW_COUNT);
    assert.equal(page.items.length, 5);
    for (const item of page.items) {
      assert.deepEqual(Object.keys(item).sort(), ['id', 'title']);
    }
  });

  test('fields limits the keys of a single record from getOne', async () => {
    const created = await pb.collection('items').create(fullItem());

    const got = await pb.collection('items').getOne(created.id, { fields: 'id,num,collectionName' });

    assert.deepEqual(got, { id: created.id, num: 3.5, collectionName: 'items' });
  });

  test('fields also applies to the record returned by create', async () => {
    const created = await pb.collection('items').create({ title: 'trimmed', num: 7 }, { fields: 'id,num' });

    assert.deepEqual(Object.keys(created).sort(), ['id', 'num']);
    assert.equal(created.num, 7);
  });

  test('fields * keeps every key and unknown names are ignored', async () => {
    const created = await pb.collection('items').create(fullItem());

    const star = await pb.collection('items').getOne(created.id, { fields: '*' });
    const unknown = await pb.collection('items').getOne(created.id, { fields: 'id,noSuchKey' });

    assert.deepEqual(star, created);
    assert.deepEqual(unknown, { id: created.id });
  });
});
