// Files through the SDK: uploads on create and update (Blob/File values turn
// the body into FormData with an `@jsonPayload` part), `field+` / `field-`
// modifiers, `pb.files.getURL` with downloads and thumbs, protected files with
// `pb.files.getToken`, rejected uploads leaving nothing behind, and a
// multipart batch with a file.

import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';

import { guestClient, rejectionOf, startServer, superuserClient } from './helpers.mjs';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** An RGB PNG of the given size. */
function png(width, height) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([x % 256, y % 256, 128], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The PNG's width and height, read from its header. */
function pngSize(bytes) {
  const buf = Buffer.from(bytes);
  return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
}

/** Stored files under the data dir (PocketBase's `.attrs` sidecars left out). */
function storedFiles(dir) {
  const out = [];
  const walk = (d) => {
    let entries = [];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const name of entries) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (!name.endsWith('.attrs')) out.push(p);
    }
  };
  walk(path.join(dir, 'storage'));
  return out;
}

const text = (s, name) => new File([s], name, { type: 'text/plain' });

describe('files', () => {
  let server;
  let pb;

  before(async () => {
    server = await startServer();
    pb = await superuserClient(server.url);
    await pb.collections.create({
      name: 'albums',
      listRule: '',
      viewRule: null,
      createRule: '',
      updateRule: '',
      fields: [
        { name: 'title', type: 'text', required: true },
        { name: 'cover', type: 'file', maxSelect: 1, mimeTypes: ['image/png'], thumbs: ['60x30'] },
        { name: 'docs', type: 'file', maxSelect: 5, maxSize: 64 },
        { name: 'secret', type: 'file', protected: true },
      ],
    });
    await pb.settings.update({ batch: { enabled: true } });
  });

  after(async () => {
    await server?.stop();
  });

  test('uploads on create and update, append and remove with modifiers', async () => {
    const created = await pb.collection('albums').create({
      title: 'trip',
      cover: new File([png(120, 80)], 'Beach Day.png', { type: 'image/png' }),
      docs: [text('one', 'one.txt'), text('two', 'two.txt')],
    });
    assert.match(created.cover, /^beach_day_[a-z0-9]{10}\.png$/);
    assert.equal(created.docs.length, 2);

    const appended = await pb.collection('albums').update(created.id, { 'docs+': text('three', 'three.txt') });
    assert.equal(appended.docs.length, 3);
    assert.match(appended.docs[2], /^three_[a-z0-9]{10}\.txt$/);

    const removed = await pb.collection('albums').update(created.id, { 'docs-': [appended.docs[0]] });
    assert.deepEqual(removed.docs, appended.docs.slice(1));
    assert.ok(
      !storedFiles(server.dir).some((p) => p.endsWith(appended.docs[0])),
      'the removed file is gone from storage',
    );

    const replaced = await pb.collection('albums').update(created.id, { cover: new File([png(10, 10)], 'new.png') });
    assert.notEqual(replaced.cover, created.cover);
    assert.ok(!storedFiles(server.dir).some((p) => p.endsWith(created.cover)), 'the replaced cover is gone');
  });

  test('getURL serves files, downloads and thumbs', async () => {
    const record = await pb.collection('albums').create({
      title: 'thumbs',
      cover: new File([png(200, 100)], 'wide.png'),
      docs: [text('hello world', 'hello.txt')],
    });

    const doc = await fetch(pb.files.getURL(record, record.docs[0]));
    assert.equal(doc.status, 200, 'unprotected files are public even with a superusers-only view rule');
    assert.equal(await doc.text(), 'hello world');

    const download = await fetch(pb.files.getURL(record, record.cover, { download: true }));
    assert.match(download.headers.get('content-disposition'), /^attachment/);
    assert.equal(download.headers.get('content-type'), 'image/png');

    const thumb = await fetch(pb.files.getURL(record, record.cover, { thumb: '60x30' }));
    assert.deepEqual(pngSize(await thumb.arrayBuffer()), [60, 30]);
    const fit = await fetch(pb.files.getURL(record, record.cover, { thumb: '100x100' }));
    assert.deepEqual(pngSize(await fit.arrayBuffer()), [100, 100], '100x100 is always allowed');
    const unlisted = await fetch(pb.files.getURL(record, record.cover, { thumb: '20x20' }));
    assert.deepEqual(pngSize(await unlisted.arrayBuffer()), [200, 100], 'unlisted sizes get the original');
  });

  test('protected files need a file token', async () => {
    const record = await pb.collection('albums').create({ title: 'secret', secret: text('classified', 's.txt') });

    const bare = await fetch(pb.files.getURL(record, record.secret));
    assert.equal(bare.status, 404);

    const token = await pb.files.getToken();
    const withToken = await fetch(pb.files.getURL(record, record.secret, { token }));
    assert.equal(withToken.status, 200);
    assert.equal(await withToken.text(), 'classified');

    const err = await rejectionOf(() => guestClient(server.url).files.getToken());
    assert.equal(err.status, 401);
  });

  test('oversize and wrong-type uploads are rejected and nothing is stored', async () => {
    const before = storedFiles(server.dir).length;
    const total = (await pb.collection('albums').getList(1, 1)).totalItems;

    const big = await rejectionOf(() =>
      pb.collection('albums').create({ title: 'big', docs: text('x'.repeat(65), 'big.txt') }),
    );
    assert.equal(big.status, 400);
    assert.equal(big.response.data.docs.code, 'validation_file_size_limit');

    const fake = await rejectionOf(() =>
      pb.collection('albums').create({ title: 'fake', cover: new File(['not a png'], 'fake.png', { type: 'image/png' }) }),
    );
    assert.equal(fake.status, 400);
    assert.equal(fake.response.data.cover.code, 'validation_invalid_mime_type');

    assert.equal(storedFiles(server.dir).length, before, 'no file was stored');
    assert.equal((await pb.collection('albums').getList(1, 1)).totalItems, total, 'no record was created');
  });

  test('a multipart batch stores files for its sub-requests', async () => {
    const batch = pb.createBatch();
    batch.collection('albums').create({ title: 'batched', docs: [text('batch file', 'b.txt')] });
    const [result] = await batch.send();

    assert.equal(result.status, 200);
    const record = result.body;
    assert.equal(record.docs.length, 1);
    const served = await fetch(pb.files.getURL(record, record.docs[0]));
    assert.equal(await served.text(), 'batch file');
  });
});
