// POST /api/sql through the SDK's generic `pb.send`, as community clients
// (a Python `pb.sql`, the dashboard's SQL console) call it: the answer's
// shape for reads and writes, and 401/403 before anything runs.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ClientResponseError } from 'pocketbase';

import { guestClient, rejectionOf, sqliteOnly, startServer, superuserClient } from './helpers.mjs';

function sql(pb, query) {
  return pb.send('/api/sql', { method: 'POST', body: { query } });
}

/** On PostgreSQL the console only reads (README, "The SQL console on PostgreSQL"). */
const WRITES = 'writes through the SQL console (read-only on PostgreSQL)';

describe('POST /api/sql', () => {
  let server;
  let pb;

  before(async () => {
    server = await startServer();
    pb = await superuserClient(server.url);
  });

  after(async () => {
    await server?.stop();
  });

  test('a read answers with string values, declared types and nulls', sqliteOnly(WRITES), async () => {
    await sql(pb, 'create table sdk_sql(id integer primary key, label text)');
    await sql(pb, "insert into sdk_sql(id, label) values (1, 'one'), (2, null)");

    const result = await sql(pb, 'select id, label, 1 + 1 as two from sdk_sql order by id');

    assert.equal(typeof result.execTime, 'number');
    assert.equal(result.affectedRows, 0);
    assert.deepEqual(result.columns, [
      { name: 'id', type: 'INTEGER', nullable: true },
      { name: 'label', type: 'TEXT', nullable: true },
      { name: 'two', type: '', nullable: true },
    ]);
    assert.deepEqual(result.rows, [
      ['1', 'one', '2'],
      ['2', null, '2'],
    ]);
  });

  test('a write reports the rows it changed and no columns', sqliteOnly(WRITES), async () => {
    await sql(pb, 'create table sdk_sql_w(id integer primary key)');

    const result = await sql(pb, 'insert into sdk_sql_w(id) values (1), (2), (3)');

    assert.equal(result.affectedRows, 3);
    assert.deepEqual(result.columns, []);
    assert.deepEqual(result.rows, []);
  });

  test('several writes report the rows the last one changed', sqliteOnly(WRITES), async () => {
    const result = await sql(
      pb,
      'create table sdk_sql_m(a); insert into sdk_sql_m values (1), (2), (3); update sdk_sql_m set a = 0 where a < 3',
    );

    assert.equal(result.affectedRows, 2);
  });

  test('bad SQL is a 400 with the raw error and empty data', async () => {
    const err = await rejectionOf(() => sql(pb, 'selec 1'));

    assert.ok(err instanceof ClientResponseError);
    assert.equal(err.status, 400);
    assert.match(err.response.message, /^Failed to execute query\. Raw error:\n/);
    assert.deepEqual(err.response.data, {});
  });

  test('a guest gets 401 and a user 403, and nothing runs', sqliteOnly(WRITES), async () => {
    const users = pb.collection('users');
    await users.create({ email: 'sql-user@example.com', password: 'secret-pass-1', passwordConfirm: 'secret-pass-1' });
    const user = guestClient(server.url);
    await user.collection('users').authWithPassword('sql-user@example.com', 'secret-pass-1');

    const asGuest = await rejectionOf(() => sql(guestClient(server.url), 'create table sdk_pwned(x)'));
    const asUser = await rejectionOf(() => sql(user, 'create table sdk_pwned(x)'));
    const left = await sql(pb, "select count(*) from sqlite_master where name = 'sdk_pwned'");

    assert.equal(asGuest.status, 401);
    assert.equal(asUser.status, 403);
    assert.deepEqual(left.rows, [['0']]);
  });

  test('on either engine a guest read is a 401 and a user read a 403', async () => {
    const users = pb.collection('users');
    await users.create({ email: 'sql-reader@example.com', password: 'secret-pass-1', passwordConfirm: 'secret-pass-1' });
    const user = guestClient(server.url);
    await user.collection('users').authWithPassword('sql-reader@example.com', 'secret-pass-1');

    const asGuest = await rejectionOf(() => sql(guestClient(server.url), 'select 1'));
    const asUser = await rejectionOf(() => sql(user, 'select 1'));
    const asSuperuser = await sql(pb, 'select 1 as one');

    assert.equal(asGuest.status, 401);
    assert.equal(asUser.status, 403);
    assert.deepEqual(asSuperuser.rows, [['1']]);
  });
});
