// View collections through the SDK: `pb.collections.create({type: 'view', viewQuery})`,
// then the read-only records API (`getList`, `getOne`, filter, expand) with the view's rules,
// writes refused, and a query that writes refused on `viewQuery`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ClientResponseError } from 'pocketbase';

import { guestClient, rejectionOf, startServer, superuserClient } from './helpers.mjs';

describe('view collections', () => {
  let server;
  let pb;
  let authors;
  let view;

  before(async () => {
    server = await startServer();
    pb = await superuserClient(server.url);
    authors = await pb.collections.create({
      name: 'authors',
      type: 'base',
      listRule: '',
      viewRule: '',
      fields: [{ name: 'name', type: 'text' }],
    });
    const books = await pb.collections.create({
      name: 'books',
      type: 'base',
      fields: [
        { name: 'title', type: 'text' },
        { name: 'pages', type: 'number' },
        { name: 'author', type: 'relation', collectionId: authors.id, maxSelect: 1 },
      ],
    });
    const ann = await pb.collection('authors').create({ name: 'Ann' });
    const bo = await pb.collection('authors').create({ name: 'Bo' });
    for (const [title, pages, author] of [
      ['A', 100, ann.id],
      ['B', 250, ann.id],
      ['C', 40, bo.id],
    ]) {
      await pb.collection(books.name).create({ title, pages, author });
    }
    view = await pb.collections.create({
      name: 'author_pages',
      type: 'view',
      listRule: '',
      viewRule: '',
      viewQuery:
        'SELECT a.id, a.id AS author, count(b.id) AS books, total(b.pages) AS pages ' +
        'FROM authors a LEFT JOIN books b ON b.author = a.id GROUP BY a.id',
    });
  });

  after(async () => {
    await server?.stop();
  });

  test('the created view has its fields inferred from the query', () => {
    assert.equal(view.type, 'view');
    const types = Object.fromEntries(view.fields.map((f) => [f.name, f.type]));
    assert.deepEqual(types, { id: 'text', author: 'relation', books: 'number', pages: 'number' });
    const author = view.fields.find((f) => f.name === 'author');
    assert.equal(author.collectionId, authors.id);
    for (const rule of ['createRule', 'updateRule', 'deleteRule']) {
      assert.equal(view[rule], null, rule);
    }
  });

  test('a guest lists, filters, sorts and expands the view', async () => {
    const guest = guestClient(server.url);
    const page = await guest.collection('author_pages').getList(1, 10, {
      sort: '-pages',
      filter: 'books >= 1',
      expand: 'author',
    });
    assert.equal(page.totalItems, 2);
    assert.deepEqual(
      page.items.map((r) => [r.expand.author.name, r.books, r.pages]),
      [
        ['Ann', 2, 350],
        ['Bo', 1, 40],
      ],
    );
    const one = await guest.collection('author_pages').getOne(page.items[1].id);
    assert.equal(one.pages, 40);
  });

  test('records of a view cannot be created, updated or deleted', async () => {
    const any = (await pb.collection('author_pages').getFullList())[0];
    for (const [what, fn] of [
      ['create', () => pb.collection('author_pages').create({ books: 1 })],
      ['update', () => pb.collection('author_pages').update(any.id, { books: 1 })],
      ['delete', () => pb.collection('author_pages').delete(any.id)],
    ]) {
      const err = await rejectionOf(fn);
      assert.ok(err instanceof ClientResponseError, what);
      assert.equal(err.status, 400, what);
      assert.equal(err.response.message, 'Unsupported collection type.', what);
    }
  });

  test('a view query that writes is refused on viewQuery', async () => {
    for (const viewQuery of ['DELETE FROM books', 'SELECT id FROM books; DROP TABLE books', 'SELECT title FROM books']) {
      const err = await rejectionOf(() => pb.collections.create({ name: 'bad_view', type: 'view', viewQuery }));
      assert.equal(err.status, 400, viewQuery);
      assert.equal(err.response.data.viewQuery?.code, 'validation_invalid_view_query', viewQuery);
    }
    assert.equal((await pb.collection('books').getList(1, 1)).totalItems, 3);
  });
});
