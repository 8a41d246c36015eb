// End-to-end: the links in verification, password-reset and email-change
// mails open public pages that work without a superuser session. Mails go
// through a loopback SMTP sink; the browser never signs in as a superuser,
// and every outcome is checked through the REST API.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OUTPUT_DIR, installSuperuser, launchBrowser, restClient, startServer, startSmtpSink } from './helpers.mjs';

const ADMIN = 'owner@example.com';
const ADMIN_PASSWORD = 'Sup3r-secret!';
const USER = 'ann@example.com';
const USER_PASSWORD = 'first-Passw0rd';
const NEW_PASSWORD = 'second-Passw0rd';
const NEW_EMAIL = 'ann.new@example.com';

let server;
let smtp;
let browser;
let page;
let rest;
let userId;

const shot = (name) => page.screenshot({ path: path.join(OUTPUT_DIR, `account-${name}.png`) });

before(async () => {
  server = await startServer();
  smtp = await startSmtpSink();
  browser = await launchBrowser({ keepOutput: true });
  page = await browser.context.newPage();
  page.setDefaultTimeout(10_000);
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
  userId = created.body.id;
});

after(async () => {
  await browser?.close();
  await smtp?.close();
  await server?.stop();
});

/** The panel link of `page` in a mail, pointing at this server. */
function linkIn(mail, pageName) {
  const m = new RegExp(`(http://[^"\\s]+/_/#/auth/${pageName}/[A-Za-z0-9._-]+)`).exec(mail.text);
  assert.ok(m, `the mail holds a ${pageName} link:\n${mail.text.slice(0, 2000)}`);
  return m[1];
}

async function user() {
  const r = await rest.call('GET', `/api/collections/users/records/${userId}`);
  assert.equal(r.status, 200);
  return r.body;
}

async function assertTokenNotShown(token) {
  const text = await page.locator('body').innerText();
  assert.ok(!text.includes(token), 'the token is not shown on the page');
}

test('the verification link verifies the user without a superuser session', async () => {
  assert.equal((await user()).verified, false);
  const asked = await rest.call('POST', '/api/collections/users/request-verification', { email: USER });
  assert.equal(asked.status, 204);
  const link = linkIn(await smtp.waitFor(USER), 'confirm-verification');
  const token = link.split('/').pop();
  await page.goto(link);
  await page.getByTestId('account-success').waitFor();
  await shot('verified');
  await assertTokenNotShown(token);
  assert.ok(!page.url().includes(token), 'the used token is dropped from the address');
  assert.equal(await page.locator('form', { hasText: 'Sign in as a superuser' }).count(), 0, 'not the superuser login');
  assert.equal((await user()).verified, true, 'the user is verified');
  // A link whose signature was tampered with is refused and offers a new mail.
  await page.goto(link.slice(0, -4) + (link.endsWith('AAAA') ? 'BBBB' : 'AAAA'));
  await page.getByTestId('account-error').waitFor();
  await page.getByRole('button', { name: 'Send a new verification email' }).waitFor();
});

test('the password reset link sets a new password the user can sign in with', async () => {
  const asked = await rest.call('POST', '/api/collections/users/request-password-reset', { email: USER });
  assert.equal(asked.status, 204);
  const link = linkIn(await smtp.waitFor(USER), 'confirm-password-reset');
  const token = link.split('/').pop();
  await page.goto(link);
  await page.getByText(USER).waitFor();
  // Mismatched confirmation: the server's field error, nothing changed.
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('Confirm new password').fill(NEW_PASSWORD + 'x');
  await page.getByRole('button', { name: 'Set new password' }).click();
  await page.locator('.field-error').first().waitFor();
  await page.getByLabel('Confirm new password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Set new password' }).click();
  await page.getByTestId('account-success').waitFor();
  await shot('password-reset');
  await assertTokenNotShown(token);
  const login = await rest.call('POST', '/api/collections/users/auth-with-password', { identity: USER, password: NEW_PASSWORD });
  assert.equal(login.status, 200, 'the new password signs in');
  const old = await rest.call('POST', '/api/collections/users/auth-with-password', { identity: USER, password: USER_PASSWORD });
  assert.equal(old.status, 400, 'the old password no longer does');
});

test('the email change link asks for the password and changes the email', async () => {
  const login = await rest.call('POST', '/api/collections/users/auth-with-password', { identity: USER, password: NEW_PASSWORD });
  assert.equal(login.status, 200);
  const asked = await fetch(server.url + '/api/collections/users/request-email-change', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: login.body.token },
    body: JSON.stringify({ newEmail: NEW_EMAIL }),
  });
  assert.equal(asked.status, 204);
  const link = linkIn(await smtp.waitFor(NEW_EMAIL), 'confirm-email-change');
  await page.goto(link);
  await page.getByText(NEW_EMAIL).waitFor();
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Confirm new email' }).click();
  await page.locator('.field-error, [data-testid="account-error"]').first().waitFor();
  assert.equal((await user()).email, USER, 'a wrong password changes nothing');
  await page.getByLabel('Password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Confirm new email' }).click();
  await page.getByTestId('account-success').waitFor();
  await shot('email-changed');
  assert.equal((await user()).email, NEW_EMAIL, 'the email is changed');
});

test('broken, forged and foreign links show a clear error and call nothing that changes state', async () => {
  const forged = (claims) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
  const cases = [
    ['no token', '#/auth/confirm-verification'],
    ['not a JWT', '#/auth/confirm-password-reset/not-a-token'],
    ['bad escape', '#/auth/confirm-email-change/%E0%A4%A'],
    ['payload without collectionId', `#/auth/confirm-verification/${forged({ email: USER })}`],
    ['collectionId that walks the path', `#/auth/confirm-password-reset/${forged({ collectionId: '..', email: USER })}`],
    ['collectionId with a slash', `#/auth/confirm-email-change/${forged({ collectionId: 'users/../../settings', newEmail: USER })}`],
  ];
  for (const [what, hash] of cases) {
    await page.goto(`${server.url}/_/${hash}`);
    await page.getByTestId('account-error').waitFor();
    assert.equal(await page.locator('input[type="password"]').count(), 0, `${what}: no form`);
  }
  // A well-formed but unsigned token reaches the server, which refuses it.
  const fake = forged({ collectionId: '_pb_users_auth_', email: NEW_EMAIL, type: 'passwordReset' });
  await page.goto(`${server.url}/_/#/auth/confirm-password-reset/${fake}`);
  await page.getByLabel('New password', { exact: true }).fill('whatever-123');
  await page.getByLabel('Confirm new password').fill('whatever-123');
  await page.getByRole('button', { name: 'Set new password' }).click();
  await page.getByTestId('account-error').waitFor();
  const login = await rest.call('POST', '/api/collections/users/auth-with-password', { identity: NEW_EMAIL, password: NEW_PASSWORD });
  assert.equal(login.status, 200, 'the forged link changed nothing');
});
