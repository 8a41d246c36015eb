// End-to-end: a view collection made in the collection editor (query errors
// from the server shown on the query, inferred fields read-only, list/view
// rules only, read-only records) and the SQL console (results, stats, the
// server's error, values shown as text, never as HTML).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OUTPUT_DIR, installSuperuser, launchBrowser, restClient, startServer, signIn } from './helpers.mjs';

const EMAIL = 'owner@example.com';
const PASSWORD = 'Sup3r-secret!';
const XSS = '<img src=x onerror="window.__xss=1">';

let server;
let browser;
let page;
let rest;

const shot = (name) => page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`), style: '.toasts { display: none; }' });

before(async () => {
  server = await startServer();
  browser = await launchBrowser({ keepOutput: true });
  page = await browser.context.newPage();
  page.setDefaultTimeout(10_000);
  rest = restClient(server.url);
  await installSuperuser(server, EMAIL, PASSWORD);
  await rest.login(EMAIL, PASSWORD);
  const posts = await rest.call('POST', '/api/collections', {
    name: 'posts', type: 'base', listRule: '', viewRule: '',
    fields: [{ name: 'title', type: 'text' }, { name: 'views', type: 'number' }],
  });
  assert.equal(posts.status, 200, JSON.stringify(posts.body));
  for (const [title, views] of [[XSS, 3], ['plain', 5]]) {
    const r = await rest.call('POST', '/api/collections/posts/records', { title, views });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  await signIn(page, server.url, EMAIL, PASSWORD);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a view collection is made from a query, with the server’s query errors, inferred fields and list/view rules only', async () => {
  await page.goto(server.url + '/_/#/new');
  await page.locator('input[name="collection-name"]').fill('post_stats');
  await page.getByLabel('Type', { exact: true }).selectOption('view');
  const query = page.locator('textarea[name="viewQuery"]');
  await query.fill('SELECT id, title FROM nope');
  await page.locator('.view-query .field-error', { hasText: 'no such table: nope' }).waitFor();
  await query.fill('SELECT id, title, views * 2 AS doubled FROM posts');
  await page.locator('[data-testid="view-fields"] [data-field-name="doubled"]').waitFor();
  await page.locator('[data-testid="view-fields"] [data-field-name="title"]').waitFor();
  // The live validation of the new draft clears the old error (it may answer after dry-run-view).
  await page.locator('.view-query .field-error').waitFor({ state: 'detached' });
  assert.equal(await page.locator('[data-testid="view-fields"] input').count(), 0, 'inferred fields are not editable');
  await shot('view-editor');

  await page.getByRole('tab', { name: /API rules/ }).click();
  const legends = await page.locator('.rules legend').allInnerTexts();
  assert.deepEqual(legends.map((l) => l.split(' rule')[0]), ['List/Search', 'View'], 'a view offers list and view rules only');
  await page.getByRole('radiogroup', { name: 'List/Search rule mode' }).getByText('Public').click();

  await page.getByTestId('save-collection').click();
  await page.waitForURL(/#\/c\/post_stats/);
  const saved = await rest.call('GET', '/api/collections/post_stats');
  assert.equal(saved.status, 200);
  assert.equal(saved.body.type, 'view');
  assert.equal(saved.body.viewQuery, 'SELECT id, title, views * 2 AS doubled FROM posts');
  assert.equal(saved.body.listRule, '');
  assert.deepEqual(saved.body.fields.map((f) => f.name), ['id', 'title', 'doubled']);
});

test('a view’s records screen is read-only and shows its rows as text', async () => {
  await page.goto(server.url + '/_/#/c/post_stats');
  await page.getByTestId('view-readonly').waitFor();
  await page.locator('td[data-col="doubled"]', { hasText: '10' }).waitFor();
  assert.equal(await page.getByRole('link', { name: '+ New record' }).count(), 0, 'no New button');
  assert.equal(await page.locator('table.records input[type="checkbox"]').count(), 0, 'no selection, so no bulk delete');
  assert.equal(await page.locator('table.records img').count(), 0, 'markup in a value is not rendered');
  await shot('view-records');
  await page.locator('td[data-col="doubled"]', { hasText: '10' }).click();
  // Wait for the record form itself: the list's own "read-only" notice is
  // already on the page, so waiting for that text can pass before the click
  // has opened the record.
  await page.locator('fieldset.form-grid[disabled]').waitFor();
  await page.getByText('read-only').first().waitFor();
  assert.equal(await page.getByTestId('save-record').count(), 0, 'no Save');
  assert.equal(await page.getByRole('button', { name: 'Delete' }).count(), 0, 'no Delete');
  assert.equal(await page.locator('fieldset.form-grid[disabled]').count(), 1, 'inputs are disabled');
  await page.goto(server.url + '/_/#/c/post_stats/r/new');
  await page.getByText('View collections are read-only').waitFor();
});

test('the SQL console runs a query with Ctrl+Enter and shows values as text, never as HTML', async () => {
  await page.goto(server.url + '/_/#/sql');
  const box = page.getByLabel('Query');
  await box.fill("SELECT title, views, NULL AS missing FROM posts ORDER BY views");
  await box.press('Control+Enter');
  const table = page.getByTestId('sql-result');
  await table.waitFor();
  assert.deepEqual(await table.locator('th').allInnerTexts(), ['title', 'views', 'missing']);
  assert.equal(await table.locator('tbody tr').first().locator('td').first().innerText(), XSS, 'the markup shows literally');
  assert.equal(await table.locator('img').count(), 0, 'no element was made from a value');
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no handler ran');
  await page.getByTestId('sql-stats').getByText('2 rows').waitFor();
  await shot('sql-console');
});

test('the SQL console shows writes’ affected rows and the server’s error for a bad query', async () => {
  await page.goto(server.url + '/_/#/sql');
  const box = page.getByLabel('Query');
  await box.fill("UPDATE posts SET views = views + 1 WHERE title = 'plain'");
  await page.getByTestId('run-sql').click();
  await page.getByTestId('sql-stats').getByText('1 affected row ').waitFor();
  const after = await rest.call('GET', '/api/collections/posts/records?filter=' + encodeURIComponent("title='plain'"));
  assert.equal(after.body.items[0].views, 6);

  await box.fill('SELEC 1');
  await page.getByTestId('run-sql').click();
  const err = page.getByTestId('sql-error');
  await err.waitFor();
  assert.match(await err.innerText(), /Failed to execute query\.[\s\S]*syntax error/);
  assert.equal(await page.getByTestId('sql-result').count(), 0, 'no stale result beside the error');
});
