// Starts the real server binary on a fresh data dir and Debian's Chromium
// through playwright-core (no browser download: executablePath is fixed).

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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
 * Starts `ferrobase serve --http 127.0.0.1:0 --dir TMP` with no superuser and
 * returns its base URL and the one-time install link it printed.
 */
export async function startServer() {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferrobase-ui-'));
  const { FERROBASE_BIN: _ours, ...env } = process.env;
  const child = spawn(serverBinary(), ['serve', '--http', '127.0.0.1:0', '--dir', dir], {
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
  return { ...found, dir, stop };
}

export async function launchBrowser() {
  // Start from an empty output dir so no screenshot is left from an older run.
  rmSync(OUTPUT_DIR, { recursive: true, force: true });
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
