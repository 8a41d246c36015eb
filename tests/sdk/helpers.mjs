// Starts a real server binary for the JS SDK tests and tears it down again.
//
// The binary is Ferrobase's debug build (`target/debug/ferrobase` at the repo
// root) unless FERROBASE_BIN names another one. Because Ferrobase matches
// PocketBase's CLI, FERROBASE_BIN=/path/to/pocketbase runs the same suite
// against the real PocketBase, which is how we check that the tests encode
// real behaviour.
//
// Each call gets a fresh data dir with one superuser (SUPERUSER_EMAIL /
// SUPERUSER_PASSWORD) and a server on a loopback port.
//
// SDK_BACKEND=postgres runs Ferrobase on PostgreSQL: each server gets a fresh
// database on PG_TEST_URL's server (tests/postgres/throwaway.sh), created and
// dropped with `psql`, and passed as FERROBASE_DATABASE_URL.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import PocketBase, { ClientResponseError } from 'pocketbase';

export const SUPERUSER_EMAIL = 'admin@example.com';
export const SUPERUSER_PASSWORD = 'Passw0rd!123';

/** How long a server may take to print its address (and the upsert to finish). */
const STARTUP_TIMEOUT_MS = 30_000;
/** How long a server may take to exit after SIGTERM before it gets SIGKILL. */
const SHUTDOWN_TIMEOUT_MS = 5_000;
/** How much of the server's stderr to keep for error messages. */
const STDERR_TAIL_CHARS = 4_000;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The server binary under test. */
export function serverBinary() {
  return process.env.FERROBASE_BIN || path.join(REPO_ROOT, 'target', 'debug', 'ferrobase');
}

/** Which engine the servers run on: `SDK_BACKEND=postgres` or SQLite (the default). */
export const onPostgres = (() => {
  const backend = process.env.SDK_BACKEND ?? 'sqlite';
  if (backend !== 'sqlite' && backend !== 'postgres') {
    throw new Error(`SDK_BACKEND=${JSON.stringify(backend)}: use sqlite or postgres`);
  }
  return backend === 'postgres';
})();

/**
 * The node:test options of a test that cannot pass on PostgreSQL yet because
 * the feature answers 400 "... is not available on PostgreSQL yet" there:
 * `test(name, sqliteOnly('why'), fn)` skips it on PostgreSQL with that reason.
 */
export function sqliteOnly(reason) {
  return onPostgres ? { skip: `not on PostgreSQL yet: ${reason}` } : {};
}

/**
 * The environment for the server: ours minus FERROBASE_BIN, which is meant for
 * this helper only (Ferrobase reads FERROBASE_* variables as config overrides
 * and refuses unknown ones), plus the database URL on PostgreSQL.
 */
function serverEnv(databaseUrl) {
  const { FERROBASE_BIN: _ours, ...env } = process.env;
  if (databaseUrl) env.FERROBASE_DATABASE_URL = databaseUrl;
  return env;
}

let psqlPath;
/** `psql` from PATH, else Debian's PostgreSQL 15 (what throwaway.sh runs). */
function psqlBinary() {
  psqlPath ??= spawnSync('psql', ['--version']).status === 0 ? 'psql' : '/usr/lib/postgresql/15/bin/psql';
  return psqlPath;
}

/** Runs one SQL statement on PG_TEST_URL's maintenance database. */
function psqlAdmin(sql) {
  const base = process.env.PG_TEST_URL;
  const result = spawnSync(psqlBinary(), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', base, '-c', sql], {
    encoding: 'utf8',
    timeout: STARTUP_TIMEOUT_MS,
  });
  if (result.error || result.status !== 0) {
    throw new Error(`psql \`${sql}\` failed (status ${result.status}, ${result.error ?? ''}): ${result.stderr}`);
  }
}

/**
 * A fresh database on PG_TEST_URL's server for one test server, or null on SQLite.
 * @returns {{url: string, drop: () => void} | null}
 */
function freshDatabase() {
  if (!onPostgres) return null;
  const base = process.env.PG_TEST_URL;
  if (!base) {
    throw new Error('SDK_BACKEND=postgres needs PG_TEST_URL (start one with tests/postgres/throwaway.sh)');
  }
  if (testingPocketBase) throw new Error('SDK_BACKEND=postgres is for Ferrobase: PocketBase has no PostgreSQL');
  const name = `fb_sdk_${process.pid}_${randomBytes(6).toString('hex')}`;
  psqlAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    // FORCE: a server killed with SIGKILL may leave a connection behind.
    drop: () => psqlAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

// Servers still running when the process exits (a crashed test file) are killed
// so that they do not outlive the test run.
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts a server with a fresh data dir and one superuser. `hooks` and
 * `migrations` name folders copied to `pb_hooks` / `pb_migrations` beside the
 * data dir, where both PocketBase and Ferrobase look for them by default.
 * @param {{hooks?: string, migrations?: string}} [options]
 * @returns {Promise<{url: string, dir: string, stop: () => Promise<void>}>}
 */
export async function startServer({ hooks, migrations } = {}) {
  const bin = serverBinary();
  if (!existsSync(bin)) {
    throw new Error(
      `server binary not found at ${bin}: build it with \`cargo build\` at the repo root, ` +
        'or point FERROBASE_BIN at a PocketBase-compatible binary',
    );
  }

  // The data dir sits one level down: PocketBase writes automigrations to
  // `<dir>/../pb_migrations`, which must stay inside our temp folder (a shared
  // one would replay other runs' migrations at startup).
  const root = mkdtempSync(path.join(tmpdir(), 'ferrobase-sdk-'));
  const dir = path.join(root, 'pb_data');
  mkdirSync(dir);
  if (hooks) cpSync(hooks, path.join(root, 'pb_hooks'), { recursive: true });
  if (migrations) cpSync(migrations, path.join(root, 'pb_migrations'), { recursive: true });
  let database = null;
  const cleanUp = () => {
    rmSync(root, { recursive: true, force: true });
    database?.drop();
  };
  try {
    database = freshDatabase();
    const env = serverEnv(database?.url);
    upsertSuperuser(bin, dir, env);
    let server = await spawnServe(bin, dir, '127.0.0.1:0', env);
    if (server.port === 0) {
      // PocketBase binds port 0 but echoes ":0" in its banner, so the real port is
      // unknown: restart it on a port we picked ourselves.
      await server.kill();
      server = await spawnServe(bin, dir, `127.0.0.1:${await freePort()}`, env);
    }
    await waitUntilAnswering(server);
    return {
      url: server.url,
      dir,
      async stop() {
        await server.kill();
        cleanUp();
      },
    };
  } catch (err) {
    cleanUp();
    throw err;
  }
}

/**
 * The SDK client, unchanged except that a failed request's error also carries
 * `responseJSON`: the test report prints nested objects as `[Object]`, and a
 * string shows the whole server response when a request fails unexpectedly.
 */
class TestClient extends PocketBase {
  async send(path, options) {
    try {
      return await super.send(path, options);
    } catch (err) {
      if (err instanceof ClientResponseError) err.responseJSON = JSON.stringify(err.response);
      throw err;
    }
  }
}

/** A PocketBase SDK client for `url`, already logged in as the seeded superuser. */
export async function superuserClient(url) {
  const pb = new TestClient(url);
  pb.autoCancellation(false);
  await pb.collection('_superusers').authWithPassword(SUPERUSER_EMAIL, SUPERUSER_PASSWORD);
  return pb;
}

/** A PocketBase SDK client for `url` with no auth. */
export function guestClient(url) {
  const pb = new TestClient(url);
  pb.autoCancellation(false);
  return pb;
}

/**
 * Whether the binary under test is the real PocketBase (the oracle run).
 * A few tests differ on purpose: where PocketBase silently turns a bad value
 * into 0, false or "" (losing what the client sent), Ferrobase answers 400
 * with a field error instead.
 */
export const testingPocketBase = path.basename(serverBinary()).startsWith('pocketbase');

/**
 * Runs `fn` and returns the error it rejects with; fails if it resolves.
 * @param {() => Promise<unknown>} fn
 */
export async function rejectionOf(fn) {
  let value;
  try {
    value = await fn();
  } catch (err) {
    return err;
  }
  throw new Error(`expected the request to fail, but it succeeded with ${JSON.stringify(value)}`);
}

function upsertSuperuser(bin, dir, env) {
  const args = ['superuser', 'upsert', SUPERUSER_EMAIL, SUPERUSER_PASSWORD, `--dir=${dir}`];
  const result = spawnSync(bin, args, { encoding: 'utf8', timeout: STARTUP_TIMEOUT_MS, env });
  if (result.error || result.status !== 0) {
    throw new Error(
      `\`${bin} ${args.join(' ')}\` failed (status ${result.status}, ${result.error ?? 'no spawn error'}):\n` +
        `${result.stdout}\n${result.stderr}`,
    );
  }
}

/**
 * Spawns `serve` and resolves once a stdout line says "Server started at http://HOST:PORT".
 * Ferrobase prints that as its first line; PocketBase prints it with a timestamp prefix,
 * so every line is scanned.
 */
function spawnServe(bin, dir, http, env) {
  const args = ['serve', `--http=${http}`, `--dir=${dir}`];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  running.add(child);

  let stderrTail = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => running.delete(child));

  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), SHUTDOWN_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  return new Promise((resolve, reject) => {
    const seen = [];
    const lines = createInterface({ input: child.stdout });
    const fail = async (why) => {
      clearTimeout(timer);
      lines.close();
      await kill();
      reject(
        new Error(
          `\`${bin} ${args.join(' ')}\` ${why}\n` +
            `stdout so far:\n${seen.join('\n') || '(nothing)'}\nstderr tail:\n${stderrTail || '(nothing)'}`,
        ),
      );
    };
    const timer = setTimeout(
      () => fail(`did not print "Server started at http://HOST:PORT" within ${STARTUP_TIMEOUT_MS / 1000} s`),
      STARTUP_TIMEOUT_MS,
    );
    child.once('error', (err) => fail(`could not be spawned: ${err.message}`));
    exited.then(({ code, signal }) => fail(`exited (code ${code}, signal ${signal}) before printing its address`));

    lines.on('line', (line) => {
      seen.push(line);
      const match = /Server started at (https?:\/\/([^\s/]+):(\d+))/.exec(line);
      if (!match) return;
      clearTimeout(timer);
      // Keep draining stdout so the server never blocks on a full pipe.
      lines.removeAllListeners('line');
      lines.on('line', () => {});
      resolve({ url: match[1], port: Number(match[3]), kill, exited, stderrTail: () => stderrTail });
    });
  });
}

/** Waits until the server answers HTTP at all (any status), within the startup budget. */
async function waitUntilAnswering(server) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let lastError;
  while (Date.now() < deadline) {
    try {
      await fetch(`${server.url}/api/health`, { signal: AbortSignal.timeout(2_000) });
      return;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await server.kill();
  throw new Error(
    `server printed ${server.url} but did not answer HTTP within ${STARTUP_TIMEOUT_MS / 1000} s ` +
      `(${lastError?.cause?.message ?? lastError?.message})\nstderr tail:\n${server.stderrTail()}`,
  );
}

/** A loopback port that was free a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}
