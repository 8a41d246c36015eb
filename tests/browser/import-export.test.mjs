// End-to-end: Settings › Export collections (selected collections' JSON,
// shown and downloaded as pb_schema.json) and Import collections (parse
// errors caught before the server, a review of added / changed / deleted
// collections, the server's refusal shown with nothing changed).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OUTPUT_DIR, installSuperuser, launchBrowser, restClient, startServer, signIn } from './helpers.mjs';

const EMAIL = 'owner@example.com';
const PASSWORD = 'Sup3r-secret!';

let server;
let browser;
let page;
let rest;
/** PUT /api/collections/import requests the page made. */
let importCalls = 0;

const shot = (name) => page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`), style: '.toasts { display: none; }', fullPage: true });

async function create(body) {
  const r = await rest.call('POST', '/api/collections', body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function get(name) {
  return rest.call('GET', '/api/collections/' + encodeURIComponent(name));
}

async function schema() {
  const r = await rest.call('GET', '/api/collections?perPage=500&sort=name');
  assert.equal(r.status, 200);
  return r.body.items;
}

/** Opens the import screen and pastes `value` (a string, or JSON of anything else). */
async function paste(value) {
  await page.goto(server.url + '/_/#/settings/import-collections');
  const box = page.getByLabel('Collections', { exact: true });
  await box.fill(typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

const change = (kind, name) => page.locator(`[data-testid="import-review"] [data-change="${kind}"][data-collection="${name}"]`);

before(async () => {
  server = await startServer();
  browser = await launchBrowser({ keepOutput: true });
  page = await browser.context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('request', (r) => {
    if (r.method() === 'PUT' && r.url().includes('/api/collections/import')) importCalls++;
  });
  rest = restClient(server.url);
  await installSuperuser(server, EMAIL, PASSWORD);
  await rest.login(EMAIL, PASSWORD);
  await create({ name: 'posts', fields: [{ name: 'title', type: 'text', max: 50 }, { name: 'views', type: 'number' }] });
  await create({ name: 'notes', fields: [{ name: 'text', type: 'text' }] });
  await create({ name: 'tags', fields: [{ name: 'label', type: 'text' }] });
  await signIn(page, server.url, EMAIL, PASSWORD);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the settings navigation leads to both screens', async () => {
  await page.goto(server.url + '/_/#/settings');
  const nav = page.getByRole('navigation', { name: 'Settings' });
  await nav.getByRole('link', { name: 'Export collections' }).click();
  await page.waitForURL(/#\/settings\/export-collections$/);
  await page.getByRole('heading', { name: 'Export collections' }).waitFor();
  await nav.getByRole('link', { name: 'Import collections' }).click();
  await page.waitForURL(/#\/settings\/import-collections$/);
  await page.getByRole('heading', { name: 'Import collections' }).waitFor();
});

test('export shows and downloads exactly the selected collections, as the API returns them', async () => {
  await page.goto(server.url + '/_/#/settings/export-collections');
  const shown = page.getByTestId('export-json');
  const all = JSON.parse(await shown.innerText());
  assert.ok(all.some((c) => c.name === '_superusers') && all.some((c) => c.name === 'posts'), 'everything is selected at first, system collections too');

  await page.getByTestId('export-select-all').uncheck();
  assert.deepEqual(JSON.parse(await shown.innerText()), [], 'select all toggles to none');
  await page.getByLabel('posts', { exact: true }).check();
  await page.getByLabel('notes', { exact: true }).check();
  const picked = JSON.parse(await shown.innerText());
  assert.deepEqual(picked.map((c) => c.name), ['notes', 'posts']);
  for (const c of picked) {
    const api = (await get(c.name)).body;
    delete api.created;
    delete api.updated;
    assert.deepEqual(c, api, `${c.name} is exported as GET /api/collections returns it, without timestamps`);
  }
  await shot('export-collections');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download JSON' }).click()]);
  assert.equal(download.suggestedFilename(), 'pb_schema.json');
  const file = JSON.parse(await readFile(await download.path(), 'utf8'));
  assert.deepEqual(file, picked, 'the file holds what is shown');
});

test('an import that adds a collection and changes a field is reviewed, then applied', async () => {
  const posts = (await get('posts')).body;
  const title = posts.fields.find((f) => f.name === 'title');
  const changedPosts = { ...posts, listRule: '', fields: posts.fields.map((f) => (f.id === title.id ? { ...f, max: 120 } : f)) };
  const articles = { name: 'articles', type: 'base', fields: [{ name: 'headline', type: 'text' }] };
  await paste([changedPosts, articles]);
  await page.getByLabel('Merge with the existing collections').check();
  await page.getByRole('button', { name: 'Review' }).click();

  await change('added', 'articles').waitFor();
  const postsChange = change('changed', 'posts');
  await postsChange.waitFor();
  const details = await postsChange.innerText();
  assert.match(details, /Field title changed[\s\S]*max: 50 → 120/, details);
  assert.match(details, /listRule: null \(superusers only\) → "" \(everyone\)/, details);
  assert.equal(await page.locator('[data-change="deleted"]').count(), 0, 'merging deletes nothing');
  assert.equal(await change('changed', 'notes').count(), 0, 'collections left out are not listed');
  await shot('import-review');

  await page.getByTestId('confirm-import').click();
  await page.getByTestId('import-done').waitFor();
  const after = await get('posts');
  assert.equal(after.body.fields.find((f) => f.name === 'title').max, 120);
  assert.equal(after.body.listRule, '');
  assert.equal((await get('articles')).status, 200);
  assert.equal((await get('tags')).status, 200, 'merge kept the collections left out');
  // The panel's collection list was reloaded: the new collection is in the sidebar.
  await page.goto(server.url + '/_/#/c/articles');
  await page.locator('.sidebar').getByRole('link', { name: 'articles' }).waitFor();
});

test('without merge, the review shows the collections and fields that would be deleted', async () => {
  const before = await schema();
  const posts = before.find((c) => c.name === 'posts');
  const onlyTitle = { ...posts, fields: posts.fields.filter((f) => f.name !== 'views') };
  await paste([onlyTitle]);
  const merge = page.getByLabel('Merge with the existing collections');
  assert.equal(await merge.isChecked(), false, 'merge is off by default (deleteMissing)');
  await page.getByRole('button', { name: 'Review' }).click();

  for (const name of ['users', 'notes', 'tags', 'articles']) await change('deleted', name).waitFor();
  assert.equal(await page.locator('[data-change="deleted"][data-collection="_superusers"]').count(), 0, 'system collections are never deleted');
  await page.getByTestId('import-review').getByText('4 collections will be deleted with all their records').waitFor();
  const postsChange = await change('changed', 'posts').innerText();
  assert.match(postsChange, /Field views removed/, postsChange);
  await shot('import-review-delete');

  // Back out: nothing was sent, nothing changed.
  const calls = importCalls;
  await page.getByRole('button', { name: 'Back' }).click();
  await merge.check();
  // Merging keeps left-out collections and fields, so this import changes nothing.
  await page.getByText('Your collections configuration is already up to date.').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Review' }).isDisabled(), true, 'nothing to review');
  assert.equal(importCalls, calls);
  assert.deepEqual(await schema(), before);
});

test('an import the server refuses shows its error and changes nothing', async () => {
  const cases = [
    [[{ name: 'broken', fields: [{ name: 'a', type: 'nope' }] }], 'broken', 'a bad field type'],
    [[{ name: 'twice', fields: [] }, { name: 'twice' }], 'twice', 'one name twice'],
    [[{ id: 'pbc_other00001', name: 'notes' }], 'notes', 'a new id with an existing name'],
  ];
  for (const [collections, named, why] of cases) {
    const before = await schema();
    await paste(collections);
    await page.getByLabel('Merge with the existing collections').check();
    await page.getByRole('button', { name: 'Review' }).click();
    await page.getByTestId('confirm-import').click();
    const err = page.getByTestId('import-error');
    await err.waitFor();
    const text = await err.innerText();
    assert.match(text, /Failed to import collections\.[\s\S]*Nothing was changed/, `${why}: ${text}`);
    assert.ok(text.includes(`"${named}"`), `${why}: the failing collection is named: ${text}`);
    assert.equal(await page.locator(`[data-collection="${named}"].has-error`).count() > 0, true, `${why}: its row is marked`);
    assert.deepEqual(await schema(), before, `${why}: nothing changed`);
    if (why === 'a bad field type') await shot('import-error');
  }
});

test('pasted text that is not a collections array is refused without calling the server', async () => {
  const cases = [
    ['not json {', /Invalid JSON/, 'not JSON'],
    ['{"name": "posts"}', /expected a JSON array of collection objects/, 'an object'],
    ['[]', /the array is empty/, 'an empty array'],
    ['[1, 2]', /item 1 is not a collection object/, 'numbers'],
    ['[{"type": "base"}]', /item 1 has no "name"/, 'no name'],
  ];
  const calls = importCalls;
  for (const [raw, message, why] of cases) {
    await paste(raw);
    const err = page.getByTestId('import-parse-error');
    await err.waitFor();
    assert.match(await err.innerText(), message, why);
    assert.equal(await page.getByRole('button', { name: 'Review' }).isDisabled(), true, `${why}: no review`);
    if (why === 'not JSON') await shot('import-parse-error');
  }
  assert.equal(importCalls, calls, 'the server was never asked');
});

test('a JSON file loads into the import box', async () => {
  await page.goto(server.url + '/_/#/settings/import-collections');
  const posts = (await get('posts')).body;
  await page.locator('#import-file').setInputFiles({ name: 'pb_schema.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify([{ ...posts, viewRule: "" }], null, 2)) });
  const box = page.getByLabel('Collections', { exact: true });
  await page.waitForFunction(() => document.querySelector('#import-json')?.value.includes('"viewRule": ""'));
  assert.deepEqual(JSON.parse(await box.inputValue())[0].id, posts.id);
  await page.getByRole('button', { name: 'Review' }).click();
  assert.match(await change('changed', 'posts').innerText(), /viewRule: null \(superusers only\) → "" \(everyone\)/);
});
