// End-to-end: the "Auth options" tab of an auth collection edits what
// PocketBase's dashboard does — OAuth2 providers (picker with logos, write-only
// client secrets, provider endpoints, removal), OTP, MFA with its rule, mail
// templates with a test send through a loopback SMTP sink, and token options
// (duration, "invalidate all previously issued tokens"). Every outcome is
// checked through the REST API.

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OUTPUT_DIR, installSuperuser, launchBrowser, restClient, startServer, startSmtpSink, signIn } from './helpers.mjs';

const ADMIN = 'owner@example.com';
const ADMIN_PASSWORD = 'Sup3r-secret!';
const USER = 'ann@example.com';
const USER_PASSWORD = 'first-Passw0rd';
const GH_SECRET = 'gh-secret-value-1234';
const OIDC_SECRET = 'oidc-secret-value-5678';

let server;
let smtp;
let browser;
let page;
let rest;
/** JSON bodies of the PATCH /api/collections/… requests the page sent. */
let patches = [];

const shot = (name) => page.screenshot({ path: path.join(OUTPUT_DIR, `auth-options-${name}.png`), style: '.toasts { display: none; }', fullPage: true });

before(async () => {
  server = await startServer();
  smtp = await startSmtpSink();
  browser = await launchBrowser({ keepOutput: true });
  page = await browser.context.newPage();
  page.setDefaultTimeout(10_000);
  // "Discard unsaved changes?" when a test leaves a draft behind: yes.
  page.on('dialog', (d) => d.accept());
  page.on('request', (r) => {
    if (r.method() === 'PATCH' && r.url().includes('/api/collections/')) patches.push(JSON.parse(r.postData() || '{}'));
  });
  rest = restClient(server.url);
  await installSuperuser(server, ADMIN, ADMIN_PASSWORD);
  await rest.login(ADMIN, ADMIN_PASSWORD);
  const settings = await rest.call('PATCH', '/api/settings', {
    meta: { appURL: server.url },
    smtp: { enabled: true, host: '127.0.0.1', port: smtp.port, tls: false, username: '', password: '' },
  });
  assert.equal(settings.status, 200, `settings saved: ${JSON.stringify(settings.body)}`);
  const created = await rest.call('POST', '/api/collections/users/records', { email: USER, password: USER_PASSWORD, passwordConfirm: USER_PASSWORD });
  assert.equal(created.status, 200, `user created: ${JSON.stringify(created.body)}`);
  await signIn(page, server.url, ADMIN, ADMIN_PASSWORD, { openCollection: false });
});

after(async () => {
  await browser?.close();
  await smtp?.close();
  await server?.stop();
});

async function users() {
  const r = await rest.call('GET', '/api/collections/users');
  assert.equal(r.status, 200);
  return r.body;
}

/** Opens the editor of `name` on its "Auth options" tab. */
async function openOptions(name = 'users') {
  // Through the records page, so the editor starts again from the stored collection.
  // (A hash change made by the page, not by goto, so the guard's confirm can be answered.)
  if (page.url().startsWith(server.url)) await page.evaluate((n) => { location.hash = `#/c/${n}`; }, name);
  else await page.goto(`${server.url}/_/#/c/${name}`);
  await page.waitForURL(new RegExp(`#/c/${name}$`));
  await page.locator('.editor').waitFor({ state: 'detached' });
  await page.goto(`${server.url}/_/#/c/${name}/edit`);
  await page.getByRole('tab', { name: /Auth options/ }).click();
  await page.locator('.auth-options').waitFor();
}

/** The section `id`, opened. */
async function section(id) {
  const s = page.locator(`[data-section="${id}"]`);
  if (!(await s.evaluate((d) => d.open))) await s.locator('summary').click();
  return s;
}

/** Clicks save and waits for the editor to hand over to the records page. */
async function save() {
  await page.getByTestId('save-collection').click();
  const banner = page.locator('.banner.error');
  await Promise.race([page.waitForURL(/#\/c\/[a-z_]+$/), banner.waitFor()]);
  if (await banner.count()) assert.fail(`the save failed: ${await banner.innerText()}`);
}

/** Waits until the live dry-run has finished with the current draft. */
async function settled() {
  await page.waitForTimeout(500);
  await page.locator('.tabs', { hasText: 'Checking with the server' }).waitFor({ state: 'detached' });
}

async function pick(search, name) {
  await page.getByRole('button', { name: '+ Add provider' }).click();
  const dialog = page.locator('dialog.picker');
  await dialog.waitFor();
  await dialog.getByPlaceholder('Search providers').fill(search);
  await dialog.locator(`[data-pick="${name}"]`).click();
  await dialog.waitFor({ state: 'detached' });
  return page.locator(`[data-provider="${name}"]`);
}

test('GitHub and an OIDC provider added through the picker are stored without echoing their secrets', async () => {
  await openOptions();
  const oauth2 = await section('oauth2');
  await oauth2.getByLabel('Enable OAuth2 sign-in').check();

  await page.getByRole('button', { name: '+ Add provider' }).click();
  const dialog = page.locator('dialog.picker');
  const all = await dialog.locator('[data-pick]').count();
  assert.equal(all, 32, 'the picker offers every provider of the server');
  await dialog.getByPlaceholder('Search providers').fill('git');
  const shown = await dialog.locator('[data-pick]').evaluateAll((els) => els.map((e) => e.dataset.pick));
  assert.deepEqual(shown, ['github', 'gitlab', 'gitee', 'gitea'], 'the search narrows the list');
  const src = await dialog.locator('[data-pick="github"] img').getAttribute('src');
  assert.match(src, /^data:image\/svg\+xml;charset=utf-8,%3Csvg/, 'the logo is an image of the server\'s SVG');
  assert.equal(await dialog.locator('svg').count(), 0, 'no logo markup is put into the page');
  await shot('01-picker');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });

  const gh = await pick('hub', 'github');
  await gh.locator('input[name="clientId"]').fill('gh-client');
  await gh.locator('input[name="clientSecret"]').fill(GH_SECRET);
  await gh.locator('select[name="pkce"]').selectOption('on');

  const oidc = await pick('oidc', 'oidc');
  await oidc.locator('input[name="clientId"]').fill('oidc-client');
  await oidc.locator('input[name="clientSecret"]').fill(OIDC_SECRET);
  await oidc.locator('input[name="displayName"]').fill('Company SSO');
  await oidc.locator('input[name="authURL"]').fill('https://sso.example.com/authorize');
  await oidc.locator('input[name="tokenURL"]').fill('https://sso.example.com/token');
  await oidc.locator('input[name="userInfoURL"]').fill('https://sso.example.com/userinfo');
  await oidc.locator('input[name="jwksURL"]').fill('https://sso.example.com/jwks');
  await oidc.locator('input[name="issuers"]').fill('https://sso.example.com, https://sso2.example.com');
  assert.equal(await oauth2.locator('select[name="mappedFields.name"]').inputValue(), 'name', 'the stored mapping is loaded');
  await oauth2.locator('select[name="mappedFields.avatarURL"]').selectOption('');
  await oauth2.locator('select[name="mappedFields.username"]').selectOption('name');
  await settled();
  await shot('02-providers');
  await save();

  const c = await users();
  const text = JSON.stringify(c);
  assert.ok(!text.includes(GH_SECRET) && !text.includes(OIDC_SECRET) && !text.includes('clientSecret'), 'no secret is echoed');
  assert.equal(c.oauth2.enabled, true);
  assert.deepEqual(c.oauth2.providers.map((p) => p.name), ['github', 'oidc']);
  const [ghStored, oidcStored] = c.oauth2.providers;
  assert.equal(ghStored.clientId, 'gh-client');
  assert.equal(ghStored.pkce, true);
  assert.equal(oidcStored.displayName, 'Company SSO');
  assert.equal(oidcStored.authURL, 'https://sso.example.com/authorize');
  assert.equal(oidcStored.tokenURL, 'https://sso.example.com/token');
  assert.equal(oidcStored.userInfoURL, 'https://sso.example.com/userinfo');
  assert.deepEqual(oidcStored.extra, { jwksURL: 'https://sso.example.com/jwks', issuers: ['https://sso.example.com', 'https://sso2.example.com'] });
  assert.equal(c.oauth2.mappedFields.name, 'name');
  assert.equal(c.oauth2.mappedFields.avatarURL, '');
  assert.equal(c.oauth2.mappedFields.username, 'name');
  const sent = patches.at(-1).oauth2.providers;
  assert.equal(sent[0].clientSecret, GH_SECRET, 'a typed secret is sent');

  const methods = await rest.call('GET', '/api/collections/users/auth-methods');
  assert.equal(methods.status, 200);
  assert.equal(methods.body.oauth2.enabled, true);
  const listed = methods.body.oauth2.providers;
  assert.deepEqual(listed.map((p) => p.name), ['github', 'oidc']);
  assert.equal(listed[1].displayName, 'Company SSO');
  for (const p of listed) assert.match(p.logo || '', /^<svg/, `${p.name} is listed with its logo`);
});

test('a provider edited without retyping its secret keeps the stored one', async () => {
  await openOptions();
  const oauth2 = await section('oauth2');
  const gh = oauth2.locator('[data-provider="github"]');
  await gh.getByRole('button', { name: 'Edit' }).click();
  const secret = gh.locator('input[name="clientSecret"]');
  assert.equal(await secret.inputValue(), '', 'the stored secret is not shown');
  assert.equal(await secret.getAttribute('placeholder'), 'unchanged');
  assert.equal(await gh.locator('input[name="clientId"]').inputValue(), 'gh-client', 'the stored client id is loaded');
  assert.equal(await gh.locator('select[name="pkce"]').inputValue(), 'on', 'the stored PKCE choice is loaded');
  await gh.locator('input[name="clientId"]').fill('gh-client-2');
  await settled();
  assert.equal(await gh.locator('.field-error').count(), 0, 'the draft needs no secret');
  await save();

  const sent = patches.at(-1).oauth2.providers;
  assert.ok(sent.every((p) => !('clientSecret' in p)), `no secret is sent for untouched providers: ${JSON.stringify(sent)}`);
  const c = await users();
  assert.equal(c.oauth2.providers[0].clientId, 'gh-client-2');
  // The server still holds both secrets: a draft that names the providers without
  // secrets passes validation, which it would not if either secret were gone.
  const check = await rest.call('POST', '/api/collections/meta/validate', {
    ...c,
    oauth2: { ...c.oauth2, providers: c.oauth2.providers.map(({ name, clientId, authURL, tokenURL, userInfoURL }) => ({ name, clientId, authURL, tokenURL, userInfoURL })) },
  });
  assert.equal(check.status, 204, `stored secrets kept: ${JSON.stringify(check.body)}`);
  const lost = await rest.call('POST', '/api/collections/meta/validate', { name: 'fresh', type: 'auth', oauth2: { providers: [{ name: 'github', clientId: 'x' }] } });
  assert.equal(lost.body?.data?.oauth2?.providers?.['0']?.clientSecret?.code, 'validation_required', 'control: without a stored secret the same draft is refused');
});

test('an OIDC provider without its auth URL shows the server\'s error on that input and nothing is saved', async () => {
  await openOptions();
  const oauth2 = await section('oauth2');
  const oidc2 = await pick('oidc', 'oidc2');
  await oidc2.locator('input[name="clientId"]').fill('second');
  await oidc2.locator('input[name="clientSecret"]').fill('second-secret');
  await oidc2.locator('input[name="tokenURL"]').fill('https://two.example.com/token');
  const authRow = oidc2.locator('.row', { has: page.locator('input[name="authURL"]') });
  await authRow.locator('.field-error', { hasText: 'Cannot be blank.' }).waitFor();
  await page.getByTestId('save-collection').click();
  await page.locator('.banner.error').waitFor();
  await authRow.locator('.field-error', { hasText: 'Cannot be blank.' }).waitFor();
  assert.equal(await oidc2.locator('input[name="authURL"]').getAttribute('aria-invalid'), 'true');
  assert.equal(await oauth2.locator('.row.has-error').count(), 1, 'only the auth URL is in error');
  await shot('03-oidc-error');
  assert.deepEqual((await users()).oauth2.providers.map((p) => p.name), ['github', 'oidc'], 'nothing saved');
});

test('Apple\'s "Generate secret" signs a client secret on the server and fills it in', async () => {
  await openOptions();
  await section('oauth2');
  const apple = await pick('apple', 'apple');
  await apple.locator('input[name="clientId"]').fill('com.example.app');
  await apple.getByRole('button', { name: 'Generate secret' }).click();
  await apple.getByLabel('Team ID').fill('TEAM123456');
  await apple.getByLabel('Key ID').fill('KEY1234567');
  await apple.getByLabel('Private key (.p8)').fill('-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----');
  await apple.getByRole('button', { name: 'Generate and use' }).click();
  await apple.locator('.provider-extra [role="alert"]').first().waitFor();
  assert.equal(await apple.locator('input[name="clientSecret"]').inputValue(), '', 'a refused key fills in nothing');

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  await apple.getByLabel('Private key (.p8)').fill(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await apple.getByRole('button', { name: 'Generate and use' }).click();
  await apple.getByLabel('Private key (.p8)').waitFor({ state: 'detached' });
  const jwt = await apple.locator('input[name="clientSecret"]').inputValue();
  assert.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the secret is a JWT');
  const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
  assert.equal(claims.iss, 'TEAM123456');
  assert.equal(claims.sub, 'com.example.app');
  await shot('03b-apple');
  // Not saved: the next test starts from the stored collection.
});

test('a removed provider is gone after saving', async () => {
  await openOptions();
  const oauth2 = await section('oauth2');
  await oauth2.getByRole('button', { name: 'Remove provider oidc', exact: true }).click();
  await page.getByTestId('confirm-yes').click();
  await oauth2.locator('[data-provider="oidc"]').waitFor({ state: 'detached' });
  await save();
  const c = await users();
  assert.deepEqual(c.oauth2.providers.map((p) => p.name), ['github']);
  const methods = await rest.call('GET', '/api/collections/users/auth-methods');
  assert.deepEqual(methods.body.oauth2.providers.map((p) => p.name), ['github']);
});

test('a new auth token duration and "invalidate tokens" end the sessions issued before', async () => {
  const signIn = await rest.call('POST', '/api/collections/users/auth-with-password', { identity: USER, password: USER_PASSWORD });
  assert.equal(signIn.status, 200);
  const refresh = (token) => fetch(server.url + '/api/collections/users/auth-refresh', { method: 'POST', headers: { Authorization: token } }).then((r) => r.status);
  assert.equal(await refresh(signIn.body.token), 200, 'the token works before');

  await openOptions();
  const tokens = await section('tokens');
  const row = tokens.locator('[data-token="authToken"]');
  await row.getByLabel('Auth token duration (seconds)').fill('3600');
  await row.getByLabel('Invalidate all previously issued tokens').check();
  assert.equal(await tokens.locator('[data-token="fileToken"]').getByLabel('Invalidate all previously issued tokens').isChecked(), false);
  await shot('06-tokens');
  await save();

  const sent = patches.at(-1);
  assert.equal(typeof sent.authToken.secret, 'string');
  assert.equal(sent.authToken.secret.length, 50, 'a 50-character secret is sent');
  assert.ok(!('secret' in sent.fileToken), 'untouched kinds send no secret');
  const c = await users();
  assert.equal(c.authToken.duration, 3600);
  assert.ok(!JSON.stringify(c).includes(sent.authToken.secret), 'the secret is not echoed');
  assert.equal(await refresh(signIn.body.token), 401, 'the token issued before is refused');
  const again = await rest.call('POST', '/api/collections/users/auth-with-password', { identity: USER, password: USER_PASSWORD });
  assert.equal(again.status, 200);
  assert.equal(await refresh(again.body.token), 200, 'new tokens work');
});

test('OTP and MFA with a rule are enabled through the panel and load back', async () => {
  await openOptions();
  const otp = await section('otp');
  await otp.getByLabel('Enable OTP sign-in by email').check();
  await otp.getByLabel('Password length').fill('2');
  await otp.locator('.row', { hasText: 'Password length' }).locator('.field-error', { hasText: 'Must be no less than 4.' }).waitFor();
  await otp.getByLabel('Password length').fill('8');
  await otp.getByLabel('Duration (seconds)').fill('300');
  const mfa = await section('mfa');
  await mfa.getByLabel('Enable MFA').check();
  await mfa.getByLabel('Duration (seconds)').fill('900');
  await mfa.getByRole('radio', { name: 'Custom expression' }).click();
  await mfa.getByLabel('MFA rule expression').fill("email != ''");
  await settled();
  assert.deepEqual(await page.locator('.auth-options .field-error').allInnerTexts(), [], 'the draft is accepted');
  await shot('04-otp-mfa');
  await save();

  const c = await users();
  assert.deepEqual([c.otp.enabled, c.otp.length, c.otp.duration], [true, 8, 300]);
  assert.deepEqual([c.mfa.enabled, c.mfa.duration, c.mfa.rule], [true, 900, "email != ''"]);
  const methods = await rest.call('GET', '/api/collections/users/auth-methods');
  assert.equal(methods.body.otp.enabled, true);
  assert.equal(methods.body.otp.duration, 300);
  assert.equal(methods.body.mfa.enabled, true);
  assert.equal(methods.body.mfa.duration, 900);

  await openOptions();
  const otpAgain = await section('otp');
  assert.equal(await otpAgain.getByLabel('Enable OTP sign-in by email').isChecked(), true);
  assert.equal(await otpAgain.getByLabel('Password length').inputValue(), '8');
  const mfaAgain = await section('mfa');
  assert.equal(await mfaAgain.getByLabel('MFA rule expression').inputValue(), "email != ''");
});

test('an MFA rule the server refuses is shown on the rule', async () => {
  await openOptions();
  const mfa = await section('mfa');
  await mfa.getByLabel('MFA rule expression').fill('nosuchfield = 1');
  await mfa.locator('.rule .field-error').waitFor();
  await page.getByTestId('save-collection').click();
  await page.locator('.banner.error').waitFor();
  assert.equal((await users()).mfa.rule, "email != ''", 'nothing saved');
});

test('a changed verification subject is saved and used by the test email', async () => {
  await openOptions();
  const templates = await section('templates');
  const card = templates.locator('[data-template="verification"]');
  await card.getByRole('button', { name: 'Edit Verification template' }).click();
  const hint = await card.locator('.placeholders').innerText();
  for (const p of ['{APP_NAME}', '{APP_URL}', '{TOKEN}', '{RECORD:']) assert.ok(hint.includes(p), `the hint names ${p}`);
  await card.getByLabel('Subject').fill('Please verify 42');
  await shot('05-template');
  await save();
  assert.equal((await users()).verificationTemplate.subject, 'Please verify 42');

  await openOptions();
  const again = await section('templates');
  await again.getByLabel('Send test emails to').fill('tester@example.com');
  const v = again.locator('[data-template="verification"]');
  await v.getByRole('button', { name: 'Edit Verification template' }).click();
  assert.equal(await v.getByLabel('Subject').inputValue(), 'Please verify 42', 'the saved subject is loaded');
  await v.getByRole('button', { name: 'Send test email' }).click();
  const mail = await smtp.waitFor('tester@example.com');
  assert.match(mail.text, /^Subject: Please verify 42\r?$/m, mail.text.slice(0, 800));
  await page.locator('.toast', { hasText: 'test email' }).waitFor();
});

test('_superusers shows no OAuth2 and keeps password sign-in on', async () => {
  await openOptions('_superusers');
  assert.equal(await page.locator('[data-section="oauth2"]').count(), 0, 'no OAuth2 section');
  const pw = await section('passwordAuth');
  assert.equal(await pw.getByLabel('Allow email/password sign-in').isDisabled(), true);
  assert.equal(await pw.getByLabel('Allow email/password sign-in').isChecked(), true);
  const tokens = await section('tokens');
  assert.notEqual(await tokens.locator('[data-token="authToken"] input[type="number"]').inputValue(), '', 'its token options load');
  await settled();
  assert.equal(await page.locator('.auth-options .field-error').count(), 0);
  await shot('07-superusers');
});
