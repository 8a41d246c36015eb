// End-to-end: the first-run link, a collection with several field types and
// a rule, record CRUD with a filter, all through the admin panel in Chromium;
// every change is then checked through the REST API. Screenshots of each main
// screen go to tests/browser/output/.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OUTPUT_DIR, launchBrowser, restClient, startServer } from './helpers.mjs';

const EMAIL = 'owner@example.com';
const PASSWORD = 'Sup3r-secret!';

let server;
let browser;
let page;
let rest;

// Toasts are hidden in screenshots: they belong to the previous action.
const shot = (name) =>
  page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`), fullPage: false, style: '.toasts { display: none; }' });

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.setDefaultTimeout(10_000);
  rest = restClient(server.url);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// The steps build on each other: after a failure the rest are skipped
// instead of each timing out on a page in an unexpected state.
let broken = false;
function step(name, fn) {
  test(name, async (t) => {
    if (broken) return t.skip('an earlier step failed');
    try {
      await fn(t);
    } catch (e) {
      broken = true;
      await shot(`failed-${name.slice(0, 40).replace(/\W+/g, '-')}`).catch(() => {});
      throw e;
    }
  });
}

/** Adds a field of `type` in the open collection editor and names it. */
async function addField(type, name) {
  await page.selectOption('#new-field-type', type);
  await page.getByRole('button', { name: '+ Add field' }).click();
  const fresh = page.locator('.field-card input[name="name"]').filter({ hasNot: page.locator('[disabled]') });
  const input = page.locator('.field-card[data-field-name^="field"] input[name="name"]').first();
  await input.fill(name);
  void fresh;
  return page.locator(`.field-card[data-field-name="${name}"]`);
}

async function saveCollection() {
  await page.getByTestId('save-collection').click();
  await page.waitForURL(/#\/c\/[a-z]+(\?|$)/);
}

step('the install link creates the first superuser and signs in', async () => {
  await page.goto(server.installLink);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password', { exact: true }).fill('short');
  await page.getByLabel('Confirm password').fill('short');
  await page.getByRole('button', { name: /Create superuser/ }).click();
  await page.locator('.field-error', { hasText: 'The length must be between 8 and 256.' }).waitFor();

  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Confirm password').fill(PASSWORD);
  await page.getByRole('button', { name: /Create superuser/ }).click();
  await page.locator('.topbar').getByText(EMAIL).waitFor();

  await rest.login(EMAIL, PASSWORD);
  const again = await rest.call('POST', '/api/_install', { token: server.installLink.split('/').pop(), email: 'x@example.com', password: PASSWORD, passwordConfirm: PASSWORD });
  assert.equal(again.status, 401, 'the install token is single use');
});

step('the session survives a reload, and login works after logout', async () => {
  await page.reload();
  await page.locator('.topbar').getByText(EMAIL).waitFor();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  await shot('01-login');
  // Keyboard: the email box has focus; Tab moves to the password box with a visible ring.
  await page.keyboard.press('Tab');
  const ring = await page.evaluate(() => {
    const el = document.activeElement;
    return { name: el?.getAttribute('name'), outline: el ? getComputedStyle(el).outlineStyle : 'none' };
  });
  assert.equal(ring.name, 'password');
  assert.notEqual(ring.outline, 'none', 'focus is visible');
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('wrong-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.banner.error', { hasText: 'Failed to authenticate.' }).waitFor();
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.topbar').getByText(EMAIL).waitFor();
});

step('collections with several field types, a relation and a checked rule', async () => {
  // A target for the relation first.
  await page.getByRole('link', { name: '+ New collection' }).click();
  await page.getByLabel('Name', { exact: true }).fill('categories');
  // The draft is checked as you type: a bad field name shows the server's
  // nested error (fields.N.name) on that field's card.
  await addField('text', 'bad name');
  await page.locator('.field-card[data-field-name="bad name"] .field-error', { hasText: 'Must be in a valid format' }).waitFor();
  await page.locator('.field-card[data-field-name="bad name"] input[name="name"]').fill('label');
  const label = page.locator('.field-card[data-field-name="label"]');
  await label.locator('input[name="min"]').fill('2');
  await saveCollection();

  await page.getByRole('link', { name: '+ New collection' }).click();
  await page.getByLabel('Name', { exact: true }).fill('posts');
  const title = await addField('text', 'title');
  await title.getByLabel('Required').check();
  await title.locator('input[name="max"]').fill('120');
  const views = await addField('number', 'views');
  await views.getByLabel('Integers only').check();
  await addField('bool', 'published');
  const status = await addField('select', 'status');
  await status.locator('input[name="values"]').fill('draft, published, archived');
  await addField('date', 'publishedAt');
  await addField('json', 'meta');
  const category = await addField('relation', 'category');
  await category.locator('select[name="collectionId"]').selectOption({ label: 'categories' });
  await category.getByLabel('Cascade delete').check();
  // Reorder: move "meta" up one place.
  await page.getByRole('button', { name: 'Move meta up' }).click();
  const order = await page.locator('.field-card').evaluateAll((els) => els.map((e) => e.getAttribute('data-field-name')));
  assert.ok(order.indexOf('meta') < order.indexOf('publishedAt'), `meta moved up: ${order}`);
  await shot('03-collection-editor');

  await page.getByRole('tab', { name: 'API rules' }).click();
  const list = page.locator('[data-rule="listRule"]');
  await list.getByRole('radio', { name: /Custom expression/ }).click();
  const box = list.locator('textarea');
  await box.fill('nosuchfield = 1');
  await list.getByText(/unknown field/).waitFor();
  await box.fill('');
  await box.pressSequentially('titl');
  await list.locator('.suggestions li', { hasText: /^title$/ }).waitFor();
  await box.press('Tab');
  await page.waitForFunction(() => document.querySelector('[data-rule="listRule"] textarea')?.value === 'title');
  await box.pressSequentially(" != '' && views >= 0 && category.la");
  await list.locator('.suggestions li', { hasText: /^category\.label$/ }).waitFor();
  await box.press('Enter');
  await page.waitForFunction(() => document.querySelector('[data-rule="listRule"] textarea')?.value.endsWith('category.label'));
  await box.pressSequentially(" != ''");
  await list.getByText('✓ Valid expression').waitFor();
  const view = page.locator('[data-rule="viewRule"]');
  await view.getByRole('radio', { name: /Public/ }).click();
  await shot('04-collection-rules');
  await saveCollection();

  const posts = await rest.call('GET', '/api/collections/posts');
  assert.equal(posts.status, 200);
  const byName = Object.fromEntries(posts.body.fields.map((f) => [f.name, f]));
  assert.equal(byName.title.required, true);
  assert.equal(byName.title.max, 120);
  assert.equal(byName.views.onlyInt, true);
  assert.deepEqual(byName.status.values, ['draft', 'published', 'archived']);
  assert.equal(byName.category.type, 'relation');
  assert.equal(byName.category.cascadeDelete, true);
  const cats = await rest.call('GET', '/api/collections/categories');
  assert.equal(byName.category.collectionId, cats.body.id);
  assert.equal(posts.body.listRule, "title != '' && views >= 0 && category.label != ''");
  assert.equal(posts.body.viewRule, '');
  assert.equal(posts.body.createRule, null, 'untouched rules stay superusers-only');
});

step('records: create, filter, edit and delete through the panel', async () => {
  await page.getByRole('link', { name: 'categories', exact: true }).click();
  await page.getByRole('link', { name: '+ New record' }).click();
  await page.locator('input[name="label"]').fill('N');
  await page.getByTestId('save-record').click();
  await page.locator('.field-error', { hasText: /length|least/i }).waitFor();
  await page.locator('input[name="label"]').fill('News');
  await page.getByTestId('save-record').click();
  await page.waitForURL(/#\/c\/categories(\?|$)/);

  await page.getByRole('link', { name: 'posts', exact: true }).click();
  for (const [t, v, pub] of [['Hello world', 5, true], ['Second post', 50, false], ['Third post', 500, true]]) {
    await page.getByRole('link', { name: '+ New record' }).click();
    await page.locator('input[name="title"]').fill(t);
    await page.locator('input[name="views"]').fill(String(v));
    if (pub) await page.locator('input[name="published"]').check();
    await page.locator('select[name="status"]').selectOption(pub ? 'published' : 'draft');
    await page.locator('input[name="publishedAt"]').fill('2024-05-01T10:30');
    await page.locator('textarea[name="meta"]').fill('{"tags": ["a"');
    await page.getByText(/Invalid JSON/).waitFor();
    await page.locator('textarea[name="meta"]').fill(`{"tags": ["a"], "n": ${v}}`);
    await page.locator('[data-relation="category"] input[type="search"]').fill('New');
    await page.locator('[data-relation="category"] .rel-results button', { hasText: 'News' }).click();
    if (t === 'Third post') await shot('06-record-form');
    await page.getByTestId('save-record').click();
    await page.waitForURL(/#\/c\/posts(\?|$)/);
  }
  await page.locator('table.records tbody tr').nth(2).waitFor();
  await page.locator('td[data-col="category"]', { hasText: 'News' }).first().waitFor(); // expanded relation label
  await shot('05-records-table');

  // Sort by a column header, both ways.
  const titles = () => page.locator('table.records tbody td[data-col="title"]').allInnerTexts();
  await page.locator('th button', { hasText: 'views' }).click();
  await page.waitForFunction(() => document.querySelector('table.records tbody td[data-col="title"]')?.textContent === 'Hello world');
  assert.deepEqual(await titles(), ['Hello world', 'Second post', 'Third post']);
  await page.locator('th button', { hasText: 'views' }).click();
  await page.waitForFunction(() => document.querySelector('table.records tbody td[data-col="title"]')?.textContent === 'Third post');

  // The column chooser hides and shows a column.
  await page.getByText('Columns', { exact: true }).click();
  await page.locator('.col-chooser').getByLabel('meta').uncheck();
  assert.equal(await page.locator('table.records th', { hasText: 'meta' }).count(), 0);
  await page.locator('.col-chooser').getByLabel('meta').check();
  await page.getByText('Columns', { exact: true }).click();

  // Filter in the filter language; a broken one shows the server's error inline.
  await page.locator('#filter').fill('views >= 50 &&');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByTestId('list-error').waitFor();
  await page.locator('#filter').fill('views >= 50');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByText('2 records').waitFor();
  assert.equal(await page.locator('table.records tbody tr').count(), 2);
  // The filter lives in the address: a reload shows the same list.
  await page.reload();
  await page.getByText('2 records').waitFor();
  assert.equal(await page.locator('#filter').inputValue(), 'views >= 50');

  // Edit "Second post".
  await page.locator('table.records tbody tr', { hasText: 'Second post' }).locator('td').nth(1).click();
  await page.locator('input[name="title"]').fill('Second post (edited)');
  await page.locator('input[name="published"]').check();
  await page.getByTestId('save-record').click();
  await page.waitForURL(/#\/c\/posts(\?|$)/);

  // Delete "Hello world" from its form.
  await page.getByRole('button', { name: 'Clear' }).click().catch(() => {});
  await page.locator('table.records tbody tr', { hasText: 'Hello world' }).locator('td').nth(1).click();
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByTestId('confirm-yes').click();
  await page.waitForURL(/#\/c\/posts(\?|$)/);
  await page.getByText('2 records').waitFor();

  const listed = await rest.call('GET', '/api/collections/posts/records?sort=views');
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body.items.map((r) => r.title), ['Second post (edited)', 'Third post']);
  const second = listed.body.items[0];
  assert.equal(second.views, 50);
  assert.equal(second.published, true);
  assert.equal(second.status, 'draft');
  assert.equal(second.publishedAt, '2024-05-01 10:30:00.000Z');
  assert.deepEqual(second.meta, { tags: ['a'], n: 50 });
  const news = await rest.call('GET', `/api/collections/categories/records?filter=${encodeURIComponent("label = 'News'")}`);
  assert.equal(second.category, news.body.items[0].id);

  // Bulk delete the rest.
  await page.getByLabel('Select all on this page').check();
  await page.getByRole('button', { name: 'Delete selected' }).click();
  await page.getByTestId('confirm-yes').click();
  await page.getByText('0 records').waitFor();
  const empty = await rest.call('GET', '/api/collections/posts/records');
  assert.equal(empty.body.totalItems, 0);
});

step('an auth collection starts from the server scaffold', async () => {
  await page.getByRole('link', { name: '+ New collection' }).click();
  await page.getByLabel('Name', { exact: true }).fill('members');
  await page.getByLabel('Type', { exact: true }).selectOption('auth');
  await page.locator('.field-card[data-field-name="email"]').waitFor();
  await addField('text', 'nickname');
  await page.getByRole('tab', { name: 'Auth options' }).click();
  await page.locator('[data-section="tokens"] summary').click();
  assert.equal(
    await page.getByLabel('Auth token duration (seconds)').inputValue(),
    '432000',
    "a new auth collection shows PocketBase's new-collection token duration (the server's scaffold)",
  );
  await page.getByLabel('Auth token duration (seconds)').fill('3600');
  await page.getByRole('tab', { name: 'API rules' }).click();
  await page.locator('[data-rule="manageRule"]').getByRole('radio', { name: /Custom expression/ }).click();
  await page.locator('[data-rule="manageRule"] textarea').fill("@request.auth.collectionName = '_superusers'");
  await page.locator('[data-rule="manageRule"]').getByText('✓ Valid expression').waitFor();
  await saveCollection();

  const members = await rest.call('GET', '/api/collections/members');
  assert.equal(members.status, 200);
  assert.equal(members.body.type, 'auth');
  const names = members.body.fields.map((f) => f.name);
  for (const n of ['id', 'password', 'tokenKey', 'email', 'emailVisibility', 'verified', 'nickname', 'created', 'updated']) {
    assert.ok(names.includes(n), `${n} in ${names}`);
  }
  assert.equal(members.body.authToken.duration, 3600);
  assert.equal(members.body.manageRule, "@request.auth.collectionName = '_superusers'");
});

step('auth records: password with confirmation and the verified flag', async () => {
  await page.getByRole('link', { name: 'users auth', exact: true }).click();
  await page.getByRole('link', { name: '+ New record' }).click();
  await page.locator('input[name="email"]').fill('reader@example.com');
  // Leaving a form with unsaved changes asks first; dismissing stays.
  const asked = new Promise((resolve) => page.once('dialog', (d) => { resolve(d.message()); d.dismiss(); }));
  await page.getByRole('link', { name: 'categories', exact: true }).click();
  assert.match(await asked, /Discard unsaved record changes/);
  // The dialog resolves before the guard puts the address back: wait for it.
  await page.waitForFunction(() => /#\/c\/users\/r\/new$/.test(location.href), null, { timeout: 5000 });
  assert.equal(await page.locator('input[name="email"]').inputValue(), 'reader@example.com');
  await page.locator('input[name="password"]').fill('reader-pass-1');
  await page.locator('input[name="passwordConfirm"]').fill('reader-pass-2');
  await page.getByTestId('save-record').click();
  await page.locator('.field-error').first().waitFor();
  await page.locator('input[name="passwordConfirm"]').fill('reader-pass-1');
  await page.locator('input[name="verified"]').check();
  await page.getByTestId('save-record').click();
  await page.waitForURL(/#\/c\/users(\?|$)/);
  await page.locator('td[data-col="verified"]', { hasText: 'verified' }).first().waitFor();

  const users = await rest.call('GET', `/api/collections/users/records?filter=${encodeURIComponent("email = 'reader@example.com'")}`);
  assert.equal(users.body.items.length, 1);
  assert.equal(users.body.items[0].verified, true);
  const login = await rest.call('POST', '/api/collections/users/auth-with-password', { identity: 'reader@example.com', password: 'reader-pass-1' });
  assert.equal(login.status, 200, 'the password set in the panel works');
});

step('dark theme and a narrower laptop viewport', async () => {
  await page.getByRole('button', { name: /^Theme:/ }).click();
  await page.getByRole('button', { name: 'Theme: dark' }).waitFor();
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(bg, 'rgb(246, 247, 249)', 'dark background applied');
  await page.setViewportSize({ width: 1024, height: 700 });
  await page.getByRole('link', { name: 'posts', exact: true }).click();
  await page.locator('table.records').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal page scroll at 1024 px (overflow ${overflow})`);
  await shot('09-dark-1024');
  await page.getByRole('button', { name: 'Theme: dark' }).click(); // → light
  await page.getByRole('button', { name: 'Theme: light' }).click(); // → system
  await page.setViewportSize({ width: 1366, height: 860 });
});

step('collections sidebar, settings and API preview screens', async () => {
  await page.getByRole('link', { name: 'categories', exact: true }).click();
  await page.getByRole('button', { name: /System/ }).click();
  await shot('02-collections');

  await page.getByRole('link', { name: /API preview/ }).click();
  await page.getByText("pb.collection('categories').getList").waitFor();
  await shot('08-api-preview');

  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByLabel('Application URL').fill('not a url');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.locator('.row.has-error', { hasText: 'Application URL' }).locator('.field-error', { hasText: 'Must be a valid url.' }).waitFor();
  await page.getByLabel('Application URL').fill('https://app.example.com');
  await page.getByLabel('Application name').fill('Ferrobase UI test');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText('Settings saved.').waitFor();
  await shot('07-settings');
  const settings = await rest.call('GET', '/api/settings');
  assert.equal(settings.body.meta.appName, 'Ferrobase UI test');
  assert.equal(settings.body.meta.appURL, 'https://app.example.com');
});

step('dropping a collection asks for confirmation first', async () => {
  await page.getByRole('link', { name: 'Collections', exact: true }).click();
  await page.getByRole('link', { name: 'posts', exact: true }).click();
  await page.getByRole('link', { name: /Edit collection/ }).click();

  // Rename one field and drop another; saving asks before dropping data.
  await page.locator('.field-card[data-field-name="views"] input[name="name"]').fill('hits');
  await page.getByRole('button', { name: 'Remove field meta' }).click();
  await page.getByTestId('confirm-yes').click();
  await page.getByRole('button', { name: 'Move title down' }).waitFor();
  await page.getByTestId('save-collection').click();
  await page.locator('dialog.confirm', { hasText: 'Drop field meta' }).waitFor();
  await page.getByTestId('confirm-yes').click();
  await page.waitForURL(/#\/c\/posts(\?|$)/);
  const changed = await rest.call('GET', '/api/collections/posts');
  const names = changed.body.fields.map((f) => f.name);
  assert.ok(names.includes('hits') && !names.includes('views'), `renamed: ${names}`);
  assert.ok(!names.includes('meta'), `dropped: ${names}`);
  assert.equal(changed.body.listRule, "title != '' && hits >= 0 && category.label != ''", 'the rule follows the rename');

  await page.getByRole('link', { name: /Edit collection/ }).click();
  await page.getByRole('button', { name: 'Delete collection' }).click();
  await page.getByRole('button', { name: 'Cancel' }).last().click();
  assert.equal((await rest.call('GET', '/api/collections/posts')).status, 200, 'cancel keeps it');
  await page.getByRole('button', { name: 'Delete collection' }).click();
  await page.getByTestId('confirm-yes').click();
  await page.waitForFunction(() => !location.hash.includes('posts'));
  assert.equal((await rest.call('GET', '/api/collections/posts')).status, 404);
});

// ---- operations: logs, backups, crons ----------------------------------

/** Clicks Refresh until `locator` shows up (request logs are written in the background). */
async function refreshUntil(locator, tries = 20) {
  for (let i = 0; i < tries; i++) {
    if (await locator.count()) return;
    await page.waitForTimeout(250);
    await page.getByRole('button', { name: '↻ Refresh' }).click();
  }
  await locator.first().waitFor();
}

step('logs: cleared after confirmation, requests listed and charted, filtered, one entry in detail', async () => {
  await page.getByRole('link', { name: 'Logs', exact: true }).click();
  await page.getByRole('heading', { name: 'Logs' }).waitFor();
  // A bad filter shows the server's error inline (before clearing: that request is logged as a 400 too).
  await page.locator('#logs-filter').fill('data.status >>= 400');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByTestId('list-error').waitFor();
  await page.getByRole('button', { name: 'Clear', exact: true }).click();
  await page.getByTestId('list-error').waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Clear logs' }).click();
  await page.locator('dialog.confirm', { hasText: 'Delete all request logs?' }).waitFor();
  await page.getByTestId('confirm-yes').click();
  await page.getByText('Logs cleared.').waitFor();

  assert.equal((await rest.call('GET', '/api/health')).status, 200);
  assert.equal((await rest.call('GET', '/api/collections/categories/records?perPage=1')).status, 200);
  assert.equal((await rest.call('GET', '/api/collections/nope_missing/records')).status, 404);

  const failing = page.locator('table.logs tbody tr', { hasText: '/api/collections/nope_missing/records' });
  await refreshUntil(failing);
  await page.locator('table.logs tbody tr', { hasText: '/api/health' }).first().waitFor();
  assert.match(await failing.getAttribute('class'), /level-error/, 'a level 8 row is marked as an error');
  assert.ok((await page.locator('.chart rect.bar').count()) >= 1, 'the chart has a bar');
  await shot('10-logs');

  // The filter narrows table and chart to the failing request.
  await page.locator('#logs-filter').fill('data.status >= 400');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForFunction(() => document.querySelectorAll('table.logs tbody tr').length === 1);
  await failing.waitFor();
  assert.match(await page.locator('.chart-head').innerText(), /\b1 request\b/);
  const hash = await page.evaluate(() => location.hash);
  assert.equal(new URLSearchParams(hash.split('?')[1]).get('filter'), 'data.status >= 400', 'the filter is kept in the address');

  await failing.getByRole('link').click();
  const detail = page.getByTestId('log-detail');
  await detail.waitFor();
  assert.equal((await detail.locator('dd[data-key="status"]').innerText()).trim(), '404');
  assert.equal((await detail.locator('dd[data-key="method"]').innerText()).trim(), 'GET');
  assert.ok((await detail.locator('dd.hl').count()) >= 1, 'error/details are highlighted');
  await shot('11-log-detail');
  await page.keyboard.press('Escape');
  await detail.waitFor({ state: 'detached' });
  assert.match(await page.evaluate(() => location.hash), /^#\/logs\?filter=/);
  const api = await rest.call('GET', `/api/logs?filter=${encodeURIComponent('data.status >= 400')}`);
  assert.equal(api.body.totalItems, 1);
});

step('backups: create with a checked name, download through a file token, schedule', async () => {
  await page.getByRole('link', { name: 'Backups', exact: true }).click();
  await page.getByRole('heading', { name: 'Backups', exact: true }).waitFor();
  await page.getByLabel('New backup name').fill('Bad Name.zip');
  await page.getByRole('button', { name: 'Create backup' }).click();
  await page.locator('.row.has-error', { hasText: 'New backup name' }).locator('.field-error').waitFor();
  await page.getByLabel('New backup name').fill('ui-test.zip');
  await page.getByRole('button', { name: 'Create backup' }).click();
  const row = page.locator('tr[data-key="ui-test.zip"]');
  await row.waitFor({ timeout: 30_000 });
  assert.match(await row.innerText(), /\d+(\.\d)? (B|KB|MB)/, 'human-readable size');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download ui-test.zip' }).click()]);
  const url = download.url();
  assert.match(url, /\/api\/backups\/ui-test\.zip\?token=.+/);
  const res = await fetch(url);
  assert.equal(res.status, 200);
  const head = Buffer.from(await res.arrayBuffer()).subarray(0, 2).toString();
  assert.equal(head, 'PK');
  await download.cancel().catch(() => {});

  await page.getByLabel('Cron expression').fill('every day');
  await page.getByRole('button', { name: 'Save schedule' }).click();
  await page.locator('.row.has-error', { hasText: 'Cron expression' }).locator('.field-error').waitFor();
  await page.getByLabel('Cron expression').fill('0 3 * * *');
  await page.getByLabel('Keep the latest').fill('5');
  await page.getByRole('button', { name: 'Save schedule' }).click();
  await page.getByText('Backup schedule saved.').waitFor();
  await shot('12-backups');
  const s = await rest.call('GET', '/api/settings');
  assert.deepEqual([s.body.backups.cron, s.body.backups.cronMaxKeep], ['0 3 * * *', 5]);
});

step('crons: the scheduled backup is listed, a job runs from the keyboard', async () => {
  await page.getByRole('link', { name: 'Crons', exact: true }).click();
  const auto = page.locator('tr[data-id="__pbAutoBackup__"]');
  await auto.waitFor();
  assert.match(await auto.innerText(), /0 3 \* \* \*/);
  const run = page.getByRole('button', { name: 'Run __pbDBOptimize__ now' });
  await run.focus();
  await page.keyboard.press('Enter');
  await page.locator('tr[data-id="__pbDBOptimize__"] .result', { hasText: '✓ Ran at' }).waitFor();
  await shot('13-crons');
});

step('backups: restore after confirmation (the panel comes back), then delete', async () => {
  await page.getByRole('link', { name: 'Backups', exact: true }).click();
  await page.getByRole('button', { name: 'Restore ui-test.zip' }).click();
  await page.locator('dialog.confirm', { hasText: 'ui-test.zip' }).waitFor();
  await page.getByTestId('confirm-yes').click();
  await page.locator('.overlay', { hasText: 'Restoring ui-test.zip' }).waitFor();
  await page.locator('.overlay').waitFor({ state: 'detached', timeout: 30_000 });
  await page.locator('.topbar').getByText(EMAIL).waitFor({ timeout: 15_000 });
  const row = page.locator('tr[data-key="ui-test.zip"]');
  await row.waitFor();
  // The backup was taken before the schedule was set.
  assert.equal((await rest.call('GET', '/api/settings')).body.backups.cron, '');

  await page.getByRole('button', { name: 'Delete ui-test.zip' }).click();
  await page.locator('dialog.confirm', { hasText: 'ui-test.zip' }).waitFor();
  await page.getByTestId('confirm-yes').click();
  await row.waitFor({ state: 'detached' });
  const list = await rest.call('GET', '/api/backups');
  assert.ok(!list.body.some((b) => b.key === 'ui-test.zip'));
});
