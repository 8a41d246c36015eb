// Filters, sort, fields and expand through the SDK the way apps use them: every
// value goes through `pb.filter(raw, params)`, which quotes strings client-side
// (the server never sees `{:name}`), so hostile values must arrive as data.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ClientResponseError } from 'pocketbase';

import { guestClient, rejectionOf, startServer, superuserClient } from './helpers.mjs';

const DROP_TABLE = "'; DROP TABLE posts; --";
const QUOTED = 'O\'Reilly "quoted"';
const BACKSLASH = 'back\\slash'; // one backslash
const MULTILINE = 'two\nlines\tand a tab';

/** Sorted titles of a list result (or an array of records). */
const titlesOf = (result) => (Array.isArray(result) ? result : result.items).map((r) => r.title).sort();
const sorted = (titles) => [...titles].sort();

describe('filters, sort, fields and expand through pb.filter', () => {
  let server;
  let pb;
  let guest;
  const people = {};
  const tags = {};
  const posts = {};
  const comments = {};
  /** Titles in insertion order. */
  const insertionOrder = [];

  before(async () => {
    server = await startServer();
    pb = await superuserClient(server.url);
    guest = guestClient(server.url);

    const open = { listRule: '', viewRule: '' };
    const peopleCol = await pb.collections.create({ name: 'people', ...open, fields: [{ name: 'name', type: 'text' }] });
    const tagsCol = await pb.collections.create({ name: 'tags', ...open, fields: [{ name: 'title', type: 'text' }] });
    const postsCol = await pb.collections.create({
      name: 'posts',
      ...open,
      fields: [
        { name: 'title', type: 'text' },
        { name: 'views', type: 'number' },
        { name: 'published', type: 'bool' },
        { name: 'cats', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
        { name: 'author', type: 'relation', collectionId: peopleCol.id, maxSelect: 1 },
        { name: 'tags', type: 'relation', collectionId: tagsCol.id, maxSelect: 5 },
        { name: 'meta', type: 'json' },
        { name: 'pubdate', type: 'date' },
        { name: 'body', type: 'editor' },
      ],
    });
    await pb.collections.create({
      name: 'comments',
      ...open,
      fields: [
        { name: 'text', type: 'text' },
        { name: 'post', type: 'relation', collectionId: postsCol.id, maxSelect: 1 },
      ],
    });

    for (const name of ['alice', 'bob', 'carol']) people[name] = await pb.collection('people').create({ name });
    for (const title of ['news', 'tech', 'misc']) tags[title] = await pb.collection('tags').create({ title });

    const seed = [
      // title, views, published, cats, author, tags, meta, pubdate
      ['Alpha', 10, true, ['a', 'b'], 'alice', ['tech', 'news'], { x: 1 }, '2024-01-15 10:00:00.000Z'],
      ['Beta', 5, false, ['a'], 'bob', ['news'], { x: 2 }, '2024-03-01 00:00:00.000Z'],
      ['Gamma', 20, true, ['b', 'c'], 'alice', ['tech'], { x: 1, y: 'z' }, '2023-12-31 23:59:59.000Z'],
      ['Delta', 0, false, [], null, [], null, ''],
      ['50% off', 7, true, ['c'], 'carol', ['misc', 'news'], { x: 3 }, '2024-02-10 12:00:00.000Z'],
      ['under_score', 7, false, ['a', 'b', 'c'], 'bob', ['tech', 'misc'], { x: 4 }, '2024-01-01 00:00:00.000Z'],
      [QUOTED, 15, true, ['a'], 'carol', ['news'], { x: 5 }, '2022-06-01 00:00:00.000Z'],
      [BACKSLASH, 1, false, [], null, [], { x: 6 }, ''],
      ['Future', 100, true, ['b'], 'alice', ['misc'], { x: 7 }, '2999-01-01 00:00:00.000Z'],
      ['Today', 3, false, [], 'bob', [], { x: 8 }, new Date().toISOString()],
    ];
    for (const [title, views, published, cats, author, tagNames, meta, pubdate] of seed) {
      posts[title] = await pb.collection('posts').create({
        title,
        views,
        published,
        cats,
        author: author ? people[author].id : '',
        tags: tagNames.map((t) => tags[t].id),
        meta,
        pubdate,
        body: `<p>Hello <b>${title}</b>, this is the body of a post.</p>`,
      });
      insertionOrder.push(title);
    }

    for (const [post, text] of [
      ['Alpha', 'great post'],
      ['Alpha', 'first!'],
      ['Gamma', 'meh'],
      ['Beta', '100% "fine"'],
      ['Delta', MULTILINE],
    ]) {
      comments[text] = await pb.collection('comments').create({ text, post: posts[post].id });
    }
  });

  after(async () => {
    await server?.stop();
  });

  /** Sorted titles of the posts matching `pb.filter(raw, params)`. */
  async function match(raw, params) {
    return titlesOf(await pb.collection('posts').getList(1, 50, { filter: pb.filter(raw, params) }));
  }

  // [sentence, raw filter, params, expected titles]
  const cases = [
    // comparison operators
    ['= on a text field matches the exact title only', 'title = {:t}', { t: 'Alpha' }, ['Alpha']],
    ['!= on a number excludes the records with that value', 'views != {:n}', { n: 7 }, ['Alpha', 'Beta', 'Gamma', 'Delta', QUOTED, BACKSLASH, 'Future', 'Today']],
    ['> on a number is strict', 'views > {:n}', { n: 10 }, ['Gamma', QUOTED, 'Future']],
    ['>= on a number includes the bound', 'views >= {:n}', { n: 10 }, ['Alpha', 'Gamma', QUOTED, 'Future']],
    ['< on a number is strict', 'views < {:n}', { n: 5 }, ['Delta', BACKSLASH, 'Today']],
    ['<= on a number includes the bound', 'views <= {:n}', { n: 5 }, ['Beta', 'Delta', BACKSLASH, 'Today']],
    ['~ is a case-insensitive contains', 'title ~ {:q}', { q: 'ALP' }, ['Alpha']],
    ['~ finds a substring in the middle of the title', 'title ~ {:q}', { q: 'mm' }, ['Gamma']],
    ['!~ excludes every title containing the value in any case', 'title !~ {:q}', { q: 'A' }, ['50% off', 'under_score', QUOTED, 'Future']],

    // bools, numbers, null
    ['published = true matches the published posts', 'published = {:p}', { p: true }, ['Alpha', 'Gamma', '50% off', QUOTED, 'Future']],
    ['published = false matches the unpublished posts', 'published = {:p}', { p: false }, ['Beta', 'Delta', 'under_score', BACKSLASH, 'Today']],
    ['a number compares numerically with a fractional bound', 'views > {:n} && views < {:m}', { n: 6.5, m: 7.5 }, ['50% off', 'under_score']],
    ['a null param matches the records whose single relation is unset', 'author = {:a}', { a: null }, ['Delta', BACKSLASH]],

    // && / || precedence and parentheses
    ['&& binds tighter than || when the || comes last', 'published = true && views > {:n} || title = {:t}', { n: 10, t: 'Beta' }, ['Beta', 'Gamma', QUOTED, 'Future']],
    ['&& binds tighter than || when the || comes first', 'title = {:t} || published = true && views > {:n}', { n: 10, t: 'Beta' }, ['Beta', 'Gamma', QUOTED, 'Future']],
    ['parentheses group an || under an &&', 'published = true && (views > {:n} || title = {:t})', { n: 10, t: 'Beta' }, ['Gamma', QUOTED, 'Future']],
    ['nested parentheses are honoured', '((views < {:lo} || views > {:hi}) && (published = false))', { lo: 2, hi: 50 }, ['Delta', BACKSLASH]],

    // modifiers and JSON paths
    ['cats:each ?= matches records with any element equal to the value', 'cats:each ?= {:c}', { c: 'a' }, ['Alpha', 'Beta', 'under_score', QUOTED]],
    ['cats:each = matches records whose every element equals the value', 'cats:each = {:c}', { c: 'a' }, ['Beta', QUOTED]],
    ['a bare multi select compares its raw JSON text, so = and ?= an element match nothing', "cats = {:c} || cats ?= {:c}", { c: 'a' }, []],
    ['a bare multi select equals its JSON text', 'cats = {:c}', { c: '["a","b"]' }, ['Alpha']],
    ['cats:length counts the selected values', 'cats:length > {:n}', { n: 1 }, ['Alpha', 'Gamma', 'under_score']],
    ['cats:length = 0 finds the empty selections', 'cats:length = 0', {}, ['Delta', BACKSLASH, 'Today']],
    ['title:lower compares the lower-cased title', 'title:lower = {:t}', { t: 'alpha' }, ['Alpha']],
    ['title:lower never equals an upper-case value', 'title:lower = {:t}', { t: 'ALPHA' }, []],
    ['a JSON path compares a number inside the json field', 'meta.x = 1', {}, ['Alpha', 'Gamma']],
    ['a JSON path compares a bound number', 'meta.x = {:x}', { x: 3 }, ['50% off']],
    ['a JSON path compares a nested string', 'meta.y = {:y}', { y: 'z' }, ['Gamma']],

    // relation paths (§4.6)
    ['a single relation path compares the related field', 'author.name = {:n}', { n: 'alice' }, ['Alpha', 'Gamma', 'Future']],
    ['a single relation path combines with a field of the record', 'author.name = {:n} && views >= {:v}', { n: 'alice', v: 20 }, ['Gamma', 'Future']],
    ["= through a multi relation requires every related record to match (and at least one)", "tags.title = 'news'", {}, ['Beta', QUOTED]],
    ['?= through a multi relation requires any related record to match', 'tags.title ?= {:t}', { t: 'news' }, ['Alpha', 'Beta', '50% off', QUOTED]],
    ['!= through a multi relation matches records without that tag, untagged ones included', 'tags.title != {:t}', { t: 'news' }, ['Gamma', 'Delta', 'under_score', BACKSLASH, 'Future', 'Today']],
    ['?!= through a multi relation matches records with at least one other tag, plus untagged ones', 'tags.title ?!= {:t}', { t: 'news' }, ['Alpha', 'Gamma', 'Delta', '50% off', 'under_score', BACKSLASH, 'Future', 'Today']],
    ['?> through a multi relation compares any related value', 'tags.title ?> {:t}', { t: 'o' }, ['Alpha', 'Gamma', 'under_score']],
    ['?~ through a multi relation is an any-contains', 'tags.title ?~ {:t}', { t: 'EC' }, ['Alpha', 'Gamma', 'under_score']],
    ['a multi relation id path with ?= finds records pointing at that id', 'tags.id ?= {:id}', () => ({ id: tags.misc.id }), ['50% off', 'under_score', 'Future']],
    ['a back-relation path with ?= finds posts that have such a comment', 'comments_via_post.text ?= {:t}', { t: 'meh' }, ['Gamma']],
    ['a back-relation path with ?~ finds posts with a matching comment', 'comments_via_post.text ?~ {:t}', { t: 'FIRST' }, ['Alpha']],

    // dates and macros
    ['a Date param selects a half-open date range', 'pubdate >= {:from} && pubdate < {:to}', { from: new Date(Date.UTC(2024, 0, 1)), to: new Date(Date.UTC(2024, 2, 1)) }, ['under_score', 'Alpha', '50% off']],
    ['a Date param equals the stored datetime to the millisecond', 'pubdate = {:d}', { d: new Date(Date.UTC(2024, 0, 15, 10)) }, ['Alpha']],
    ['@now separates past from future dates', 'pubdate > @now', {}, ['Future']],
    ['@todayStart and @now bracket a date set today', 'pubdate >= @todayStart && pubdate <= @now', {}, ['Today']],
    ["!= '' leaves the records without a date out of a date range", "pubdate < {:d} && pubdate != ''", { d: new Date(Date.UTC(2024, 0, 1)) }, ['Gamma', QUOTED]],
    ['an unset date compares as the empty string, so it sorts before every date', 'pubdate < {:d}', { d: new Date(Date.UTC(2024, 0, 1)) }, ['Gamma', QUOTED, 'Delta', BACKSLASH]],
    ["an unset date equals ''", "pubdate = ''", {}, ['Delta', BACKSLASH]],
  ];

  for (const [sentence, raw, params, expected] of cases) {
    test(`${sentence}: ${raw}`, async () => {
      const got = await match(raw, typeof params === 'function' ? params() : params);

      assert.deepEqual(got, sorted(expected));
    });
  }

  test('pb.filter quotes strings and formats dates as the server stores them', () => {
    assert.equal(
      pb.filter('title = {:t} && pubdate = {:d} && views > {:n} && published = {:p}', {
        t: QUOTED,
        d: new Date(Date.UTC(2024, 0, 15, 10)),
        n: 3,
        p: true,
      }),
      'title = "O\'Reilly \\"quoted\\"" && pubdate = "2024-01-15 10:00:00.000Z" && views > 3 && published = true',
    );
  });

  // LIKE wildcards and hostile values in the bound value: all of them must
  // arrive as data. [sentence, raw filter, params, expected titles]
  const dataCases = [
    ['~ treats an underscore in the value as a literal character', 'title ~ {:q}', { q: '_' }, ['under_score']],
    ['~ matches an underscore between two letters literally', 'title ~ {:q}', { q: 'r_s' }, ['under_score']],
    ['~ does not let an underscore stand for an arbitrary character', 'title ~ {:q}', { q: 'e_s' }, []],
    ['~ with a trailing unescaped percent is a starts-with pattern', 'title ~ {:q}', { q: '50%' }, ['50% off']],
    ['~ with a leading unescaped percent is an ends-with pattern', 'title ~ {:q}', { q: '%ta' }, ['Beta', 'Delta']],
    ['~ with an unescaped percent inside is not wrapped in %…% any more', 'title ~ {:q}', { q: '0% o' }, []],
    ['~ with a lone percent matches every title', 'title ~ {:q}', { q: '%' }, () => insertionOrder],
    ['!~ with a lone percent matches no title', 'title !~ {:q}', { q: '%' }, []],
    ['~ with a backslash-escaped percent searches for a literal percent sign', 'title ~ {:q}', { q: '\\%' }, ['50% off']],
    ['?~ through a back-relation with an escaped percent searches for a literal percent sign', 'comments_via_post.text ?~ {:q}', { q: '\\%' }, ['Beta']],
    ['= with a percent sign compares it literally', 'title = {:t}', { t: '%' }, []],
    ['= with a title containing a percent sign matches that record', 'title = {:t}', { t: '50% off' }, ['50% off']],
    ['= with a value full of single and double quotes matches exactly that record', 'title = {:t}', { t: QUOTED }, [QUOTED]],
    ['~ with a double quote finds the title containing one', 'title ~ {:q}', { q: '"' }, [QUOTED]],
    ['~ with a single quote finds the title containing one', 'title ~ {:q}', { q: "'" }, [QUOTED]],
    ['?= through a back-relation with quotes and a percent sign matches exactly', 'comments_via_post.text ?= {:t}', { t: '100% "fine"' }, ['Beta']],
    ['= with an SQL injection attempt matches nothing', 'title = {:t}', { t: DROP_TABLE }, []],
    ['~ with an SQL injection attempt matches nothing', 'title ~ {:q}', { q: DROP_TABLE }, []],
    ['relation paths with an SQL injection attempt match nothing', 'author.name = {:n} || tags.title ?= {:n}', { n: DROP_TABLE }, []],
    ['a value that closes its double quotes to add an || clause matches nothing', 'title = {:t}', { t: 'Alpha" || title != "' }, []],
    ['a value that closes single quotes to add an || clause matches nothing', 'title = {:t}', { t: "Alpha' || '1' = '1" }, []],
    ['a value that tries to widen an && into an || matches nothing', 'title = {:t} && views > 0', { t: 'x" || views >= 0 || title = "' }, []],
    ['= with a value containing a backslash matches exactly that record', 'title = {:t}', { t: BACKSLASH }, [BACKSLASH]],
    ['~ with a lone backslash finds the title containing one', 'title ~ {:q}', { q: '\\' }, [BACKSLASH]],
    ['= with two backslashes does not match a title with one', 'title = {:t}', { t: 'back\\\\slash' }, []],
    ['?= with a newline and a tab in the value (sent as JSON escapes) matches exactly', 'comments_via_post.text ?= {:t}', { t: MULTILINE }, ['Delta']],
    ['?~ with a lone newline finds the comment spanning two lines', 'comments_via_post.text ?~ {:q}', { q: '\n' }, ['Delta']],
    ['= with a value ending in a backslash is data, not an escaped closing quote', 'title = {:t} || title = {:u}', { t: 'back\\', u: 'Alpha' }, ['Alpha']],
  ];

  for (const [sentence, raw, params, expected] of dataCases) {
    test(`${sentence}: ${raw} with ${JSON.stringify(params)}`, async () => {
      const got = await match(raw, params);

      assert.deepEqual(got, sorted(typeof expected === 'function' ? expected() : expected));
    });
  }

  test('after all the injection attempts every post is still there', async () => {
    const all = await pb.collection('posts').getList(1, 50, { fields: 'title' });

    assert.equal(all.totalItems, insertionOrder.length);
    assert.deepEqual(titlesOf(all), sorted(insertionOrder));
  });

  // sort
  test('sort -views,title orders by views descending and breaks the tie by title', async () => {
    const page = await pb.collection('posts').getList(1, 50, { sort: '-views,title' });

    assert.deepEqual(
      page.items.map((r) => r.title),
      ['Future', 'Gamma', QUOTED, 'Alpha', '50% off', 'under_score', 'Beta', 'Today', BACKSLASH, 'Delta'],
    );
  });

  test('sort by a relation path orders by the related name, unset relations first', async () => {
    const page = await pb.collection('posts').getList(1, 50, { sort: 'author.name', expand: 'author' });

    assert.deepEqual(
      page.items.map((r) => r.expand?.author?.name ?? ''),
      ['', '', 'alice', 'alice', 'alice', 'bob', 'bob', 'bob', 'carol', 'carol'],
    );
  });

  test('sort by a relation path descending with a tie breaker gives a total order', async () => {
    const page = await pb.collection('posts').getList(1, 50, { sort: '-author.name,views' });

    assert.deepEqual(
      page.items.map((r) => r.title),
      ['50% off', QUOTED, 'Today', 'Beta', 'under_score', 'Alpha', 'Gamma', 'Future', 'Delta', BACKSLASH],
    );
  });

  test('sort -@rowid returns the newest records first', async () => {
    const page = await pb.collection('posts').getList(1, 50, { sort: '-@rowid' });

    assert.deepEqual(
      page.items.map((r) => r.title),
      [...insertionOrder].reverse(),
    );
  });

  test('sort combines with a filter', async () => {
    const page = await pb.collection('posts').getList(1, 50, {
      filter: pb.filter('published = {:p}', { p: true }),
      sort: 'views',
    });

    assert.deepEqual(
      page.items.map((r) => r.title),
      ['50% off', 'Alpha', QUOTED, 'Gamma', 'Future'],
    );
  });

  // fields
  test('fields id,title gives only those keys on every listed record', async () => {
    const page = await pb.collection('posts').getList(1, 50, { fields: 'id,title', filter: pb.filter('views >= {:n}', { n: 10 }) });

    assert.equal(page.totalItems, 4);
    for (const item of page.items) assert.deepEqual(Object.keys(item).sort(), ['id', 'title']);
    assert.deepEqual(titlesOf(page), sorted(['Alpha', 'Gamma', QUOTED, 'Future']));
  });

  test('fields *,expand.author.name keeps every field and only the name of the expanded author', async () => {
    const record = await pb.collection('posts').getOne(posts.Alpha.id, {
      expand: 'author,tags',
      fields: '*,expand.author.name',
    });

    const { expand, ...rest } = record;
    assert.deepEqual(rest, posts.Alpha);
    assert.deepEqual(expand, { author: { name: 'alice' } });
  });

  test('fields body:excerpt(10,true) turns the editor HTML into 10 plain characters and an ellipsis', async () => {
    const record = await pb.collection('posts').getOne(posts.Alpha.id, { fields: 'id,body:excerpt(10,true)' });

    assert.deepEqual(record, { id: posts.Alpha.id, body: 'Hello Alph...' });
  });

  test('fields body:excerpt without the ellipsis flag only strips and truncates', async () => {
    const record = await pb.collection('posts').getOne(posts.Beta.id, { fields: 'body:excerpt(200)' });

    assert.deepEqual(record, { body: 'Hello Beta, this is the body of a post.' });
  });

  // expand
  test('expand author,tags gives the author object and the tags in the order of the ids', async () => {
    const record = await pb.collection('posts').getOne(posts.Alpha.id, { expand: 'author,tags' });

    assert.equal(record.expand.author.name, 'alice');
    assert.equal(record.expand.author.id, people.alice.id);
    assert.ok(Array.isArray(record.expand.tags));
    assert.deepEqual(
      record.expand.tags.map((t) => t.title),
      ['tech', 'news'],
      'Alpha lists tech before news although news was created first',
    );
    assert.deepEqual(
      record.expand.tags.map((t) => t.id),
      record.tags,
    );
    assert.deepEqual(record.tags, [tags.tech.id, tags.news.id], 'the relation field itself still holds ids');
  });

  test('expand on a list expands every item and leaves an unset relation out', async () => {
    const page = await pb.collection('posts').getList(1, 50, {
      filter: pb.filter('title = {:a} || title = {:b}', { a: 'Gamma', b: 'Delta' }),
      expand: 'author',
      sort: 'title',
    });

    assert.deepEqual(
      page.items.map((r) => [r.title, r.expand?.author?.name]),
      [
        ['Delta', undefined],
        ['Gamma', 'alice'],
      ],
    );
  });

  test('nested expand post.author on a comment reaches the author through the post', async () => {
    const comment = await pb.collection('comments').getOne(comments.meh.id, { expand: 'post.author' });

    assert.equal(comment.expand.post.id, posts.Gamma.id);
    assert.equal(comment.expand.post.title, 'Gamma');
    assert.equal(comment.expand.post.expand.author.name, 'alice');
  });

  test('back-relation expand comments_via_post gives the comments of a post as an array', async () => {
    const record = await pb.collection('posts').getOne(posts.Alpha.id, { expand: 'comments_via_post' });

    assert.ok(Array.isArray(record.expand.comments_via_post));
    assert.deepEqual(record.expand.comments_via_post.map((c) => c.text).sort(), ['first!', 'great post']);
    for (const c of record.expand.comments_via_post) assert.equal(c.post, posts.Alpha.id);
  });

  test('an unknown expand path is ignored while the valid ones still expand', async () => {
    const record = await pb.collection('posts').getOne(posts.Alpha.id, { expand: 'nope,author' });

    assert.deepEqual(Object.keys(record.expand), ['author']);
    assert.equal(record.expand.author.name, 'alice');
  });

  test('an expand path whose last segment is unknown is ignored as a whole', async () => {
    const record = await pb.collection('posts').getOne(posts.Alpha.id, { expand: 'author,tags.nope' });

    assert.deepEqual(Object.keys(record.expand), ['author'], 'tags is not expanded on the way to an unknown field');
  });

  test('an expand naming only an unknown field answers with the record and no expand key', async () => {
    const record = await pb.collection('posts').getOne(posts.Beta.id, { expand: 'nope' });

    assert.deepEqual(record, posts.Beta);
  });

  // getFirstListItem
  test('getFirstListItem with a bound title returns that record', async () => {
    const record = await pb.collection('posts').getFirstListItem(pb.filter('title = {:t}', { t: QUOTED }), { expand: 'author' });

    assert.equal(record.id, posts[QUOTED].id);
    assert.equal(record.expand.author.name, 'carol');
  });

  test('getFirstListItem with no match fails with 404', async () => {
    const err = await rejectionOf(() => pb.collection('posts').getFirstListItem(pb.filter('title = {:t}', { t: DROP_TABLE })));

    assert.ok(err instanceof ClientResponseError);
    assert.equal(err.status, 404);
  });

  // errors
  for (const filter of ["title = 'unterminated", "(title = 'Alpha'", 'title ==== 1', 'title =', '&& views > 1', 'nosuchfield = 1', 'views > 1e3']) {
    test(`a filter that cannot be parsed or resolved is refused with 400: ${filter}`, async () => {
      const err = await rejectionOf(() => pb.collection('posts').getList(1, 10, { filter }));

      assert.ok(err instanceof ClientResponseError);
      assert.equal(err.status, 400, err.responseJSON);
      assert.deepEqual(err.response.data, {});
    });
  }

  test('a guest may filter a public collection with pb.filter', async () => {
    const page = await guest.collection('posts').getList(1, 50, { filter: guest.filter('tags.title ?= {:t}', { t: 'tech' }) });

    assert.deepEqual(titlesOf(page), sorted(['Alpha', 'Gamma', 'under_score']));
  });

  test('a guest using @request.auth.id in a filter is refused with 403', async () => {
    const err = await rejectionOf(() =>
      guest.collection('posts').getList(1, 10, { filter: guest.filter('author = @request.auth.id || views > {:n}', { n: 0 }) }),
    );

    assert.ok(err instanceof ClientResponseError);
    assert.equal(err.status, 403, err.responseJSON);
    assert.equal(err.response.message, 'Only superusers can filter by @request.');
  });
});
