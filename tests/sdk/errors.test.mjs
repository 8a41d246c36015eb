// Error responses as the SDK surfaces them: ClientResponseError with `status`
// and the server's envelope in `response` (validation details under `data`).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ClientResponseError } from 'pocketbase';

import { rejectionOf, startServer, superuserClient } from './helpers.mjs';

const MISSING_ID = 'aaaaaaaaaaaaaaa'; // well-formed, never created

function assertClientError(err, status) {
  assert.ok(err instanceof ClientResponseError, `expected ClientResponseError, got ${err}`);
  assert.equal(err.status, status, `response was ${JSON.stringify(err.response)}`);
  assert.equal(err.response.status, status, 'the envelope repeats the status');
  assert.equal(typeof err.response.message, 'string');
  assert.equal(err.isAbort, false);
}

describe('error responses', () => {
  let server;
  let pb;
  let post;

  before(async () => {
    server = await startServer();
    pb = await superuserClient(server.url);
    const tags = await pb.collections.create({ name: 'tags', fields: [{ name: 'label', type: 'text' }] });
    await pb.collections.create({
      name: 'posts',
      fields: [
        { name: 'title', type: 'text', required: true, max: 10 },
        { name: 'status', type: 'select', values: ['draft', 'published'], maxSelect: 1 },
        { name: 'cats', type: 'select', values: ['a', 'b', 'c'], maxSelect: 2 },
        { name: 'views', type: 'number', min: 0, max: 100, onlyInt: true },
        { name: 'mail', type: 'email' },
        { name: 'site', type: 'url' },
        { name: 'tag', type: 'relation', collectionId: tags.id, maxSelect: 1 },
        { name: 'loc', type: 'geoPoint' },
      ],
    });
    post = await pb.collection('posts').create({ title: 'exists' });
  });

  after(async () => {
    await server?.stop();
  });

  test('a missing required field is a 400 with validation_required under that field', async () => {
    const err = await rejectionOf(() => pb.collection('posts').create({ status: 'draft' }));

    assertClientError(err, 400);
    assert.equal(err.response.message, 'Failed to create record.');
    assert.deepEqual(Object.keys(err.response.data), ['title']);
    assert.equal(err.response.data.title.code, 'validation_required');
    assert.equal(err.response.data.title.message, 'Cannot be blank.');
  });

  test('an invalid select value is a 400 with validation_invalid_value naming the value', async () => {
    const err = await rejectionOf(() => pb.collection('posts').create({ title: 'ok', status: 'nope' }));

    assertClientError(err, 400);
    assert.deepEqual(err.response.data, {
      status: { code: 'validation_invalid_value', message: 'Invalid value nope.', params: { value: 'nope' } },
    });
  });

  test('an update that blanks a required field is rejected and leaves the record as it was', async () => {
    const err = await rejectionOf(() => pb.collection('posts').update(post.id, { title: '' }));
    const reread = await pb.collection('posts').getOne(post.id);

    assertClientError(err, 400);
    assert.equal(err.response.data.title?.code, 'validation_required', JSON.stringify(err.response));
    assert.equal(reread.title, 'exists');
  });

  test('every invalid field of one request is reported at once', async () => {
    const err = await rejectionOf(() => pb.collection('posts').create({ status: 'nope', views: 1000 }));

    assertClientError(err, 400);
    assert.deepEqual(Object.keys(err.response.data).sort(), ['status', 'title', 'views']);
  });

  for (const [why, body, field, code] of [
    ['text longer than max', { title: 'far too long for ten' }, 'title', 'validation_max_text_constraint'],
    ['a number above max', { views: 101 }, 'views', 'validation_max_number_constraint'],
    ['a number below min', { views: -1 }, 'views', 'validation_min_number_constraint'],
    ['a fraction in an integer-only number', { views: 1.5 }, 'views', 'validation_only_int_constraint'],
    ['more select values than maxSelect', { cats: ['a', 'b', 'c'] }, 'cats', 'validation_too_many_values'],
    ['an invalid email', { mail: 'not-an-email' }, 'mail', 'validation_is_email'],
    ['an invalid url', { site: 'not a url' }, 'site', 'validation_invalid_url'],
    ['a relation to a record that does not exist', { tag: MISSING_ID }, 'tag', 'validation_missing_rel_records'],
    ['a latitude out of range', { loc: { lon: 0, lat: 91 } }, 'loc', 'validation_invalid_latitude'],
  ]) {
    test(`${why} is a 400 with ${code}`, async () => {
      const err = await rejectionOf(() => pb.collection('posts').create({ title: 'ok', ...body }));

      assertClientError(err, 400);
      assert.equal(err.response.data[field]?.code, code, JSON.stringify(err.response));
    });
  }

  for (const [why, id, code] of [
    ['shorter than 15 characters', 'short', 'validation_min_text_constraint'],
    ['longer than 15 characters', 'abcdefghijklmnop', 'validation_max_text_constraint'],
    ['with uppercase letters', 'ABCDEFGHIJKLMNO', 'validation_invalid_format'],
  ]) {
    test(`a client-supplied id ${why} is a 400 with ${code}`, async () => {
      const err = await rejectionOf(() => pb.collection('posts').create({ id, title: 'ok' }));

      assertClientError(err, 400);
      assert.equal(err.response.data.id?.code, code, JSON.stringify(err.response));
    });
  }

  test('a client-supplied id that is already taken is a 400 with validation_not_unique', async () => {
    const err = await rejectionOf(() => pb.collection('posts').create({ id: post.id, title: 'ok' }));

    assertClientError(err, 400);
    assert.equal(err.response.data.id?.code, 'validation_not_unique', JSON.stringify(err.response));
  });

  test('changing a record id on update is a 400 with validation_pk_change', async () => {
    const err = await rejectionOf(() => pb.collection('posts').update(post.id, { id: 'zzzzzzzzzzzzzzz' }));

    assertClientError(err, 400);
    assert.deepEqual(err.response.data, {
      id: { code: 'validation_pk_change', message: 'The record primary key cannot be changed.' },
    });
    assert.equal(err.response.message, 'Failed to update record.');
  });

  test('sorting by an unknown field is a 400 with the generic message and no data', async () => {
    const err = await rejectionOf(() => pb.collection('posts').getList(1, 10, { sort: 'noSuchField' }));

    assertClientError(err, 400);
    assert.deepEqual(err.response, {
      data: {},
      message: 'Something went wrong while processing your request.',
      status: 400,
    });
  });

  test('a page number that is not an integer is a 400', async () => {
    const err = await rejectionOf(() => pb.collection('posts').getList('abc', 10));

    assertClientError(err, 400);
    assert.deepEqual(err.response.data, {});
  });

  test('listing records of an unknown collection is a 404', async () => {
    const err = await rejectionOf(() => pb.collection('no_such_collection').getList(1, 10));

    assertClientError(err, 404);
    assert.deepEqual(err.response.data, {});
  });

  test('creating a record in an unknown collection is a 404', async () => {
    const err = await rejectionOf(() => pb.collection('no_such_collection').create({ title: 'x' }));

    assertClientError(err, 404);
  });

  test('getOne of an unknown collection is a 404', async () => {
    const err = await rejectionOf(() => pb.collections.getOne('no_such_collection'));

    assertClientError(err, 404);
  });

  test('getOne of a record id that does not exist is a 404', async () => {
    const err = await rejectionOf(() => pb.collection('posts').getOne(MISSING_ID));

    assertClientError(err, 404);
    assert.deepEqual(err.response, { data: {}, message: "The requested resource wasn't found.", status: 404 });
  });

  test('updating a record id that does not exist is a 404', async () => {
    const err = await rejectionOf(() => pb.collection('posts').update(MISSING_ID, { title: 'x' }));

    assertClientError(err, 404);
  });

  test('deleting a record id that does not exist is a 404', async () => {
    const err = await rejectionOf(() => pb.collection('posts').delete(MISSING_ID));

    assertClientError(err, 404);
  });
});
