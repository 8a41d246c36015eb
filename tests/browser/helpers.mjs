// Starts the real server binary on a fresh data dir and Debian's Chromium
// through playwright-core (no browser download: executablePath is fixed).

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..');
export const OUTPUT_DIR = path.join(HERE, 'output');

/** How long the server may take to print its address and install link. */
const STARTUP_TIMEOUT_MS = 30_000;

export function serverBinary() {
  return process.env.FERROBASE_BIN || path.join(REPO_ROOT, 'target', 'debug', 'ferrobase');
}

/**
 * Starts `ferrobase serve --http 127.0.0.1:0 --dir TMP/pb_data` with no superuser and
 * returns its base URL and the one-time install link it printed.
 */
export async function startServer() {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferrobase-ui-'));
  // The data dir is one level down: automigrate writes pb_migrations/ beside
  // it, which must be this server's own (beside a dir directly in /tmp, every
  // test server would share /tmp/pb_migrations and replay the others' changes).
  const dataDir = path.join(dir, 'pb_data');
  const { FERROBASE_BIN: _ours, ...env } = process.env;
  const child = spawn(serverBinary(), ['serve', '--http', '127.0.0.1:0', '--dir', dataDir], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const lines = createInterface({ input: child.stdout });
  const found = await new Promise((resolve, reject) => {
    let url = null;
    let first = true;
    const timer = setTimeout(() => reject(new Error(`server did not print its install link in time; stderr: ${stderr}`)), STARTUP_TIMEOUT_MS);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}; stderr: ${stderr}`)));
    lines.on('line', (line) => {
      if (first) {
        first = false;
        const m = /^Server started at (http:\/\/\S+)$/.exec(line);
        if (!m) return reject(new Error(`unexpected first line: ${line}`));
        url = m[1];
        return;
      }
      const link = /(http:\/\/\S+\/_\/#\/pbinstal\/[A-Za-z0-9]+)/.exec(line);
      if (link) {
        clearTimeout(timer);
        resolve({ url, installLink: link[1] });
      }
    });
  });
  const stop = async () => {
    child.kill('SIGTERM');
    await new Promise((r) => {
      const t = setTimeout(() => { child.kill('SIGKILL'); r(); }, 5000);
      child.once('exit', () => { clearTimeout(t); r(); });
    });
    rmSync(dir, { recursive: true, force: true });
  };
  return { ...found, dir: dataDir, stop };
}

/**
 * `keepOutput`: leave tests/browser/output/ as it is (files run beside
 * admin.test.mjs, which empties it, pass true).
 */
export async function launchBrowser({ keepOutput = false } = {}) {
  // Start from an empty output dir so no screenshot is left from an older run.
  if (!keepOutput) rmSync(OUTPUT_DIR, { recursive: true, force: true });
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'ferrobase-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1366, height: 860 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const close = async () => {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}

/** Superuser REST calls for assertions. */
export function restClient(base) {
  let token = '';
  const call = async (method, p, body) => {
    const res = await fetch(base + p, {
      method,
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: token } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return {
    call,
    async login(email, password) {
      const r = await call('POST', '/api/collections/_superusers/auth-with-password', { identity: email, password });
      if (r.status !== 200) throw new Error(`login failed: ${JSON.stringify(r.body)}`);
      token = r.body.token;
    },
  };
}

/** Creates the first superuser through the install link's token, over REST. */
export async function installSuperuser(server, email, password) {
  const token = server.installLink.split('/').pop();
  const res = await fetch(server.url + '/api/_install', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token, email, password, passwordConfirm: password }),
  });
  if (!res.ok) throw new Error(`install failed: ${res.status} ${await res.text()}`);
}

/**
 * A loopback SMTP sink: just enough SMTP for the server's mailer (EHLO/HELO,
 * MAIL, RCPT, DATA, RSET, NOOP, QUIT; no STARTTLS, no AUTH). Keeps every
 * message; `waitFor(to)` resolves with the next unread one for `to`, its
 * quoted-printable undone.
 */
export async function startSmtpSink() {
  const inbox = [];
  const waiters = [];
  const deliver = () => {
    for (const w of [...waiters]) {
      const i = inbox.findIndex((m) => !m.read && m.to.includes(w.to));
      if (i < 0) continue;
      inbox[i].read = true;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(inbox[i]);
    }
  };
  const sockets = new Set();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    let buf = '';
    let inData = false;
    let mail = { to: [], raw: '' };
    sock.write('220 sink ESMTP\r\n');
    sock.on('data', (chunk) => {
      buf += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          mail.raw = buf.slice(0, end).replace(/\r\n\.\./g, '\r\n.');
          buf = buf.slice(end + 5);
          inData = false;
          inbox.push({ to: mail.to, text: decodeQuotedPrintable(mail.raw), read: false });
          mail = { to: [], raw: '' };
          sock.write('250 queued\r\n');
          deliver();
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') sock.write('250-sink\r\n250 8BITMIME\r\n');
        else if (verb === 'HELO' || verb === 'MAIL' || verb === 'RSET' || verb === 'NOOP') sock.write('250 ok\r\n');
        else if (verb === 'RCPT') {
          const m = /<([^>]*)>/.exec(line);
          if (m) mail.to.push(m[1].toLowerCase());
          sock.write('250 ok\r\n');
        } else if (verb === 'DATA') {
          inData = true;
          sock.write('354 go on\r\n');
        } else if (verb === 'QUIT') {
          sock.end('221 bye\r\n');
          return;
        } else sock.write('502 not here\r\n');
      }
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    waitFor(to, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const w = { to: to.toLowerCase(), resolve };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no mail for ${to} within ${timeoutMs} ms`));
        }, timeoutMs);
        w.resolve = (m) => { clearTimeout(t); resolve(m); };
        waiters.push(w);
        deliver();
      });
    },
    close: () => new Promise((r) => {
      server.close(() => r());
      for (const s of sockets) s.destroy();
    }),
  };
}

function decodeQuotedPrintable(raw) {
  const bytes = Buffer.from(raw.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  return bytes.toString('utf8');
}

/** moto's server from the virtualenv tests/run.sh installs (see tests/api/s3_server.rs). */
const MOTO_BIN = path.join(REPO_ROOT, 'tests', '.venv-s3', 'bin', 'moto_server');
/** Moto accepts any signature unless told to check them; a request needs one to not be anonymous. */
const MOTO_AUTH = 'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00';

/** A free loopback port. */
async function freePort() {
  const probe = createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address();
  await new Promise((r) => probe.close(r));
  return port;
}

/**
 * Starts moto in server mode on loopback with one bucket, or returns null when
 * moto is not installed here (a failure under CI=true, where it must be).
 */
export async function startMoto() {
  if (!existsSync(MOTO_BIN)) {
    if (process.env.CI === 'true') throw new Error(`${MOTO_BIN} is missing (required when CI=true)`);
    console.error(`S3 BROWSER TESTS SKIPPED: ${MOTO_BIN} is missing; run tests/run.sh`);
    return null;
  }
  const port = await freePort();
  const child = spawn(MOTO_BIN, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  const call = (method, p) => fetch(endpoint + p, { method, headers: { Authorization: MOTO_AUTH } });
  const started = Date.now();
  for (;;) {
    try {
      await call('GET', '/');
      break;
    } catch {
      if (Date.now() - started > STARTUP_TIMEOUT_MS * 2) { child.kill('SIGKILL'); throw new Error('moto did not answer'); }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const bucket = 'fb-ui-test';
  const made = await call('PUT', `/${bucket}`);
  if (!made.ok) throw new Error(`bucket not created: ${made.status}`);
  return {
    endpoint,
    bucket,
    /** Every key in the bucket. */
    async keys() {
      const text = await (await call('GET', `/${bucket}?list-type=2`)).text();
      return [...text.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]).sort();
    },
    stop: () => new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) return r();
      child.once('exit', () => r());
      child.kill('SIGTERM');
    }),
  };
}

/**
 * Signs the panel in as the superuser `email`. Unless `openCollection` is
 * false, also waits for the panel to open the first collection, so that
 * redirect cannot land after a test's own navigation.
 */
export async function signIn(page, url, email, password, { openCollection = true } = {}) {
  await page.goto(url + '/_/');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.topbar').getByText(email).waitFor();
  if (openCollection) await page.waitForURL(/#\/c\//);
}
