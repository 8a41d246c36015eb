// End-to-end: the Files storage screen and the backups screen's S3 form
// against a loopback moto server: fill and save (persisted, secret never sent
// back), "Test connection" shows the server's answer, a bucket the server
// cannot use is refused on the form with nothing saved, and a backup made
// from the panel lands in the bucket.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OUTPUT_DIR, installSuperuser, launchBrowser, restClient, startMoto, startServer, signIn } from './helpers.mjs';

const EMAIL = 'owner@example.com';
const PASSWORD = 'Sup3r-secret!';
const SECRET = 'moto-secret-value';

let moto;
let server;
let browser;
let page;
let rest;

const shot = (name) => page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`), style: '.toasts { display: none; }' });

/** Fills one S3 form (`storage` or `backups`) and saves it. */
async function fillAndSave(target, bucket) {
  const form = page.getByTestId(`s3-form-${target}`);
  const prefix = target === 'backups' ? 'backups.s3' : 's3';
  const enabled = form.locator(`input[name="${prefix}.enabled"]`);
  if (!(await enabled.isChecked())) await enabled.check();
  await form.getByLabel('Bucket').fill(bucket);
  await form.getByLabel('Region').fill('us-east-1');
  await form.getByLabel('Endpoint').fill(moto.endpoint);
  await form.getByLabel('Access key').fill('test');
  await form.getByLabel('Secret').fill(SECRET);
  const pathStyle = form.locator(`input[name="${prefix}.forcePathStyle"]`);
  if (!(await pathStyle.isChecked())) await pathStyle.check();
  await form.getByRole('button', { name: 'Save' }).click();
  return form;
}

before(async () => {
  moto = await startMoto();
  if (!moto) return;
  server = await startServer();
  browser = await launchBrowser({ keepOutput: true });
  page = await browser.context.newPage();
  page.setDefaultTimeout(15_000);
  rest = restClient(server.url);
  await installSuperuser(server, EMAIL, PASSWORD);
  await rest.login(EMAIL, PASSWORD);
  await signIn(page, server.url, EMAIL, PASSWORD);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await moto?.stop();
});

test('a bucket the server cannot use is refused on the Files storage form and nothing is saved', async (t) => {
  if (!moto) return t.skip('moto is not installed');
  await page.goto(server.url + '/_/#/settings/storage');
  const form = await fillAndSave('storage', 'no-such-bucket');
  await form.locator('.field-error', { hasText: 'could not be used' }).waitFor();
  const saved = await rest.call('GET', '/api/settings');
  assert.equal(saved.body.s3.enabled, false, 'still on the local disk');
  assert.equal(saved.body.s3.bucket, '', 'nothing saved');
});

test('the Files storage form saves the S3 settings and its test button reports the server’s answer', async (t) => {
  if (!moto) return t.skip('moto is not installed');
  await page.goto(server.url + '/_/#/settings/storage');
  const form = await fillAndSave('storage', moto.bucket);
  await form.getByRole('button', { name: 'Test connection' }).waitFor();
  const saved = await rest.call('GET', '/api/settings');
  assert.equal(saved.status, 200);
  assert.deepEqual(
    { ...saved.body.s3 },
    { enabled: true, bucket: moto.bucket, region: 'us-east-1', endpoint: moto.endpoint, accessKey: 'test', forcePathStyle: true },
    'persisted, and the secret is never sent back',
  );

  await form.getByRole('button', { name: 'Test connection' }).click();
  const result = page.getByTestId('s3-test-result-storage');
  await result.getByText('S3 connection is successful.').waitFor();
  await shot('storage-s3');

  await page.reload();
  const again = page.getByTestId('s3-form-storage');
  assert.equal(await again.getByLabel('Bucket').inputValue(), moto.bucket, 'shown after a reload');
  assert.equal(await again.getByLabel('Secret').inputValue(), '', 'the secret stays write-only');
  assert.deepEqual(await moto.keys(), [], 'the probe object was deleted');
});

test('the backups screen keeps backups in the bucket once its S3 form is saved', async (t) => {
  if (!moto) return t.skip('moto is not installed');
  await page.goto(server.url + '/_/#/backups');
  const form = await fillAndSave('backups', moto.bucket);
  await form.getByRole('button', { name: 'Test connection' }).click();
  await page.getByTestId('s3-test-result-backups').getByText('S3 connection is successful.').waitFor();
  const saved = await rest.call('GET', '/api/settings');
  assert.equal(saved.body.backups.s3.enabled, true);
  assert.equal(saved.body.backups.s3.bucket, moto.bucket);
  assert.equal(saved.body.backups.s3.secret, undefined, 'write-only');

  await page.getByLabel('New backup name').fill('from_panel.zip');
  await page.getByRole('button', { name: 'Create backup' }).click();
  await page.locator('tr[data-key="from_panel.zip"]').waitFor();
  assert.ok((await moto.keys()).includes('from_panel.zip'), 'the archive is in the bucket');
  await shot('backups-s3');
});
