// End-to-end: full-text search and the Summary view in the admin panel.
// A field is made searchable in the field editor and saved (checked over
// REST); the records screen's search box then sends `search=` with
// `sort=@rank`, folds diacritics, finds what a `~` filter finds and ranks the
// heavier field first; bad search text shows the server's 400 inline; a
// collection without searchable fields keeps only the filter box; the
// Summary shows the right counts and sums for seeded data (relation groups
// by their records' labels, date buckets).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OUTPUT_DIR, installSuperuser, launchBrowser, restClient, startServer, signIn } from './helpers.mjs';

const EMAIL = 'owner@example.com';
const PASSWORD = 'Sup3r-secret!';

let server;
let browser;
let page;
let rest;

const shot = (name) => page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`), style: '.toasts { display: none; }' });

/** Seeded records: `creme` is in one title (weight 4) and one body (weight 1). */
const SEED = [
  { title: 'Crème brûlée', body: 'a baked dessert', kind: 'a', amount: 10 },
  { title: 'Dessert ideas', body: 'try a creme caramel', kind: 'b', amount: 5 },
  { title: 'Rust web server', body: 'actix and tokio', kind: 'a', amount: 7 },
  { title: 'Bread', body: 'flour and water', kind: 'c', amount: 1 },
];

before(async () => {
  server = await startServer();
  browser = await launchBrowser({ keepOutput: true });
  page = await browser.context.newPage();
  page.setDefaultTimeout(15_000);
  rest = restClient(server.url);
  await installSuperuser(server, EMAIL, PASSWORD);
  await rest.login(EMAIL, PASSWORD);
  const authors = await rest.call('POST', '/api/collections', { name: 'authors', type: 'base', fields: [{ name: 'name', type: 'text' }] });
  assert.equal(authors.status, 200, JSON.stringify(authors.body));
  const ann = (await rest.call('POST', '/api/collections/authors/records', { name: 'Ann' })).body.id;
  const bob = (await rest.call('POST', '/api/collections/authors/records', { name: 'Bob' })).body.id;
  const made = await rest.call('POST', '/api/collections', {
    name: 'articles',
    type: 'base',
    fields: [
      { name: 'title', type: 'text' },
      { name: 'body', type: 'editor' },
      { name: 'kind', type: 'select', values: ['a', 'b', 'c'], maxSelect: 1 },
      { name: 'amount', type: 'number' },
      { name: 'author', type: 'relation', collectionId: authors.body.id, maxSelect: 1 },
      { name: 'created', type: 'autodate', onCreate: true, onUpdate: false },
    ],
  });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  for (const [i, r] of SEED.entries()) {
    const res = await rest.call('POST', '/api/collections/articles/records', { ...r, author: i === 3 ? bob : ann });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  await signIn(page, server.url, EMAIL, PASSWORD);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// The steps build on each other: after a failure the rest are skipped.
let broken = false;
function step(name, fn) {
  test(name, async (t) => {
    if (broken) return t.skip('an earlier step failed');
    try {
      await fn(t);
    } catch (e) {
      broken = true;
      await shot(`search-failed-${name.slice(0, 40).replace(/\W+/g, '-')}`).catch(() => {});
      throw e;
    }
  });
}

/** Waits until the records table's title column reads `want`, top to bottom. */
async function expectTitles(want, message) {
  const read = () => page.locator('table.records tbody td[data-col="title"]').allInnerTexts();
  await page
    .waitForFunction((w) => JSON.stringify([...document.querySelectorAll('table.records tbody td[data-col="title"]')].map((td) => td.innerText)) === w, JSON.stringify(want))
    .catch(() => {});
  assert.deepEqual(await read(), want, message);
}

/** Waits until the table lists every seeded record (in any order: they may share a `created`). */
async function expectAll() {
  await page.waitForFunction((n) => document.querySelectorAll('table.records tbody td[data-col="title"]').length === n, SEED.length);
  const got = await page.locator('table.records tbody td[data-col="title"]').allInnerTexts();
  assert.deepEqual(got.sort(), SEED.map((r) => r.title).sort());
}

step('a collection without searchable fields has only the filter box', async () => {
  await page.goto(server.url + '/_/#/c/articles');
  await page.locator('#filter').waitFor();
  await expectAll();
  assert.equal(await page.locator('#search').count(), 0);
});

step('the field editor marks fields searchable with a weight, saved through the collection save', async () => {
  await page.goto(server.url + '/_/#/c/articles/edit');
  const title = page.locator('.field-card[data-field-name="title"]');
  await title.getByRole('button', { name: 'Show options of title' }).click();
  // Number fields have no search option; text-like ones do.
  const amount = page.locator('.field-card[data-field-name="amount"]');
  await amount.getByRole('button', { name: 'Show options of amount' }).click();
  assert.equal(await amount.getByTestId('search-opts').count(), 0);
  await title.getByLabel('Searchable (full-text)').check();
  await title.getByLabel('Search weight').fill('4');
  await title.getByLabel('Substring (trigram)').waitFor();
  // A weight the server refuses shows its field error on the card.
  await title.getByLabel('Search weight').fill('-1');
  await title.locator('.field-error', { hasText: 'greater than 0' }).waitFor();
  await title.getByLabel('Search weight').fill('4');
  await title.locator('.field-error').waitFor({ state: 'detached' });
  const body = page.locator('.field-card[data-field-name="body"]');
  await body.getByRole('button', { name: 'Show options of body' }).click();
  await body.getByLabel('Searchable (full-text)').check();
  // The collection-level list follows the toggles.
  await page.getByTestId('search-fields').filter({ hasText: 'Full-text search: title, body' }).waitFor();
  await shot('search-01-field-editor');
  await page.getByTestId('save-collection').click();
  await page.waitForURL(/#\/c\/articles(\?|$)/);

  const saved = await rest.call('GET', '/api/collections/articles');
  const byName = Object.fromEntries(saved.body.fields.map((f) => [f.name, f]));
  assert.equal(byName.title.searchable, true);
  assert.equal(byName.title.searchWeight, 4);
  assert.equal(byName.title.searchTrigram, false);
  assert.equal(byName.body.searchable, true);
  assert.equal(byName.body.searchWeight, 1);
  assert.equal(byName.kind.searchable, undefined, 'untouched fields keep PocketBase’s shape');
  assert.deepEqual(saved.body.searchFields, ['title', 'body'], 'the collection-level list, derived');
});

step('the search box folds diacritics, finds what a ~ filter finds and ranks the heavier field first', async () => {
  await page.goto(server.url + '/_/#/c/articles');
  const box = page.getByPlaceholder('Full-text search…');
  await box.fill('creme');
  const listed = page.waitForResponse((r) => r.url().includes('/records?') && r.url().includes('search=creme'));
  await page.getByRole('button', { name: 'Apply' }).click();
  const res = await listed;
  const url = new URL(res.url());
  assert.equal(url.searchParams.get('sort'), '@rank');
  assert.equal(url.searchParams.get('filter'), null, 'no ~ filter is built');
  await expectTitles(['Crème brûlée', 'Dessert ideas'], 'title (weight 4) before body (weight 1)');
  await page.getByTestId('search-ranked').waitFor();
  assert.match(page.url(), /search=creme/);
  await shot('search-02-results');

  // The same records as the `~` filter on both fields.
  const filter = encodeURIComponent("title ~ 'Crème' || body ~ 'creme'");
  const viaFilter = await rest.call('GET', `/api/collections/articles/records?filter=${filter}`);
  assert.deepEqual(viaFilter.body.items.map((r) => r.title).sort(), ['Crème brûlée', 'Dessert ideas']);

  // A reload keeps the search from the address.
  await page.reload();
  assert.equal(await page.getByPlaceholder('Full-text search…').inputValue(), 'creme');
  await expectTitles(['Crème brûlée', 'Dessert ideas']);

  // A column sort chosen by the user wins over the rank.
  await page.locator('th button', { hasText: 'title' }).click();
  await page.waitForFunction(() => location.hash.includes('sort=title'));
  await expectTitles(['Crème brûlée', 'Dessert ideas']);
  await page.locator('th button', { hasText: 'title' }).click();
  await expectTitles(['Dessert ideas', 'Crème brûlée']);
});

step('search text with no word shows the server’s 400 inline; Clear brings every record back', async () => {
  await page.getByPlaceholder('Full-text search…').fill('!!! ()');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByTestId('list-error').waitFor();
  assert.ok(await page.locator('#search.invalid').count(), 'the box is marked invalid');
  await page.getByRole('button', { name: 'Clear', exact: true }).click();
  await expectAll();
  assert.doesNotMatch(page.url(), /search=/);
});

step('the Summary shows counts and sums per group, under the search', async () => {
  await page.getByRole('button', { name: 'Summary' }).click();
  const summary = page.getByTestId('summary');
  await summary.getByLabel('Group by').selectOption('kind');
  await summary.getByLabel('Sum of').selectOption('amount');
  const row = (g) => summary.locator(`tr[data-group="${g}"]`);
  await row('c').locator('[data-testid="summary-sum"]').waitFor();
  const read = async (g) => [await row(g).getByTestId('summary-count').innerText(), await row(g).getByTestId('summary-sum').innerText()];
  // The table re-renders as each answer arrives: wait for the expected
  // figures (up to 5 s) instead of reading the first render.
  const settle = async (g, want) => {
    const until = Date.now() + 5000;
    let got;
    while (Date.now() < until) {
      got = await read(g).catch(() => null);
      if (JSON.stringify(got) === JSON.stringify(want)) return;
      await page.waitForTimeout(50);
    }
    assert.deepEqual(got, want, `group ${g}`);
  };
  await settle('a', ['2', '17']);
  await settle('b', ['1', '5']);
  await settle('c', ['1', '1']);
  // Biggest group first.
  assert.equal(await summary.locator('tbody tr').first().getAttribute('data-group'), 'a');
  await shot('search-03-summary');

  // Under a search the summary covers only the matching records.
  await page.getByPlaceholder('Full-text search…').fill('creme');
  await page.getByRole('button', { name: 'Apply' }).click();
  await row('c').waitFor({ state: 'detached' });
  await settle('a', ['1', '10']);
  await settle('b', ['1', '5']);

  await page.getByRole('button', { name: 'Clear', exact: true }).click();
  await row('c').waitFor();
  // A relation's groups carry the related records' labels.
  await summary.getByLabel('Group by').selectOption('author');
  await summary.locator('td.summary-key', { hasText: 'Ann' }).waitFor();
  await summary.locator('td.summary-key', { hasText: 'Bob' }).waitFor();
  assert.deepEqual(await summary.locator('tbody td.summary-key').allInnerTexts(), ['Ann', 'Bob']);
  assert.deepEqual(await summary.getByTestId('summary-count').allInnerTexts(), ['3', '1']);

  // A date bucket groups every record into this month.
  await summary.getByLabel('Group by').selectOption('created:month');
  const month = new Date().toISOString().slice(0, 7);
  await row(month).waitFor();
  assert.equal(await row(month).getByTestId('summary-count').innerText(), String(SEED.length));
});

step('hostile input: an oversized search is a 400 inline, markup in values stays text', async () => {
  await page.getByPlaceholder('Full-text search…').fill('word '.repeat(400));
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByTestId('list-error').waitFor();
  await page.getByRole('button', { name: 'Clear', exact: true }).click();
  await page.waitForFunction(() => !location.hash.includes('search='));
  await page.getByTestId('list-error').waitFor({ state: 'detached' });
  await expectAll();

  const evil = '<img src=x onerror="window.__xss=1">';
  const made = await rest.call('POST', '/api/collections/articles/records', { title: evil, body: 'creme', kind: 'c', amount: 0 });
  assert.equal(made.status, 200);
  await page.reload();
  const summary = page.getByTestId('summary');
  if (!(await summary.count())) await page.getByRole('button', { name: 'Summary' }).click();
  await summary.getByLabel('Group by').selectOption('title');
  await summary.locator('td.summary-key', { hasText: evil }).waitFor();
  await page.getByPlaceholder('Full-text search…').fill('creme');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('table.records td[data-col="title"]', { hasText: evil }).waitFor();
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no markup ran');
  assert.equal(await page.locator('table.records img, .summary img').count(), 0);
});

step('search matches are marked in the list from the server’s highlight; stored markup shows as text', async () => {
  const evil = '<img src=x onerror="window.__xss2=1"> quince & <b>tart</b>';
  const made = await rest.call('POST', '/api/collections/articles/records', { title: evil, body: 'plain', kind: 'c', amount: 0 });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  await page.goto(server.url + '/_/#/c/articles');
  await page.getByPlaceholder('Full-text search…').fill('quince');
  const marksAsked = page.waitForResponse((r) => r.url().includes('/records?') && r.url().includes('highlight'));
  await page.getByRole('button', { name: 'Apply' }).click();
  const asked = new URL((await marksAsked).url());
  assert.equal(asked.searchParams.get('fields'), 'id,title:highlight', 'only plain-text searchable columns are marked');
  const title = page.locator('table.records td[data-col="title"]', { hasText: 'quince' });
  await title.locator('mark', { hasText: 'quince' }).waitFor();
  assert.equal(await title.locator('mark').count(), 1, 'one match, one mark');
  // The cell starts a little before the match, so the mark is in view.
  assert.equal(await title.innerText(), '….__xss2=1"> quince & <b>tart</b>', 'the stored markup reads as text');
  assert.equal(await title.locator('[data-marked]').getAttribute('title'), evil, 'the whole value on hover');
  assert.equal(await page.locator('table.records img, table.records b').count(), 0, 'no element from the record');
  assert.equal(await page.evaluate(() => window.__xss2), undefined, 'no markup ran');
  await shot('search-04-marks');

  // Diacritics are folded in the marks too: `creme` marks `Crème`.
  await page.getByPlaceholder('Full-text search…').fill('creme');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('table.records td[data-col="title"] mark', { hasText: 'Crème' }).waitFor();
});
