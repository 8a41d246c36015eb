// The "API" screen: the superuser's OpenAPI document rendered by the bundled
// Scalar (no request leaves the server's origin), a download of the JSON, and
// "Test Request" sending the signed-in superuser's token to a superuser-only
// endpoint.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OUTPUT_DIR, installSuperuser, launchBrowser, startServer, signIn } from './helpers.mjs';

const EMAIL = 'owner@example.com';
const PASSWORD = 'Sup3r-secret!';

let server;
let browser;
let page;
const hosts = new Set();

before(async () => {
  server = await startServer();
  browser = await launchBrowser({ keepOutput: true });
  page = await browser.context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('request', (r) => hosts.add(new URL(r.url()).host));
  await installSuperuser(server, EMAIL, PASSWORD);
  await signIn(page, server.url, EMAIL, PASSWORD);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the API screen renders the document from the bundle, with nothing fetched from elsewhere', async () => {
  await page.locator('.topbar').getByRole('link', { name: 'API' }).click();
  await page.getByText('Ferrobase API').first().waitFor();
  await page.getByText('Health check').first().waitFor();
  await page.screenshot({ path: path.join(OUTPUT_DIR, 'api-docs.png') });

  const origin = new URL(server.url).host;
  assert.deepEqual([...hosts], [origin], 'every request stays on the server (no CDN, fonts or telemetry)');
});

test('the document downloads as openapi.json', async () => {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download openapi.json' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'openapi.json');
  const doc = JSON.parse(await readFile(await download.path(), 'utf8'));
  assert.equal(doc.openapi, '3.1.0');
  assert.ok(doc.paths['/api/metrics'], 'the superuser’s document, with admin endpoints');
});

test('Test Request sends the signed-in superuser’s token', async () => {
  const token = await page.evaluate(() => {
    for (const k of Object.keys(localStorage)) {
      try {
        const v = JSON.parse(localStorage.getItem(k) || 'null');
        if (v && typeof v.token === 'string') return v.token;
      } catch {}
    }
    return '';
  });
  assert.ok(token, 'the panel keeps the session in localStorage');
  await page.getByText('Prometheus metrics').first().click();
  await page.getByRole('button', { name: /Test Request\s*\(get \/api\/metrics\)/ }).click();
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/api/metrics'),
    page.getByRole('button', { name: /Send get request to/ }).click(),
  ]);
  const sent = response.request().headers().authorization || '';
  assert.equal(sent.replace(/^Bearer /, ''), token, 'the request carries the panel’s token');
  assert.equal(response.status(), 200, 'a superuser-only endpoint answers');
  await page.screenshot({ path: path.join(OUTPUT_DIR, 'api-docs-try.png') });
});
