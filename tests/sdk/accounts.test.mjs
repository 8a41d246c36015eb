// Account flows of the `users` collection, driven through the SDK the way an app
// drives them: sign-up and email verification, password login and refresh,
// password reset, email change, one-time passwords, MFA, impersonation, and the
// protections around them (no self-verification, hidden emails, no secrets in
// responses, failed-login throttling).
//
// Each describe gets its own server and its own SMTP sink (smtp-sink.mjs), with
// the server's SMTP settings pointed at the sink, so the tokens and codes the
// server mails out can be read back and used.
//
// Differences on PocketBase (the oracle run): PocketBase has no always-on
// failed-login throttle, so that describe is skipped there.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';

import { ClientResponseError } from 'pocketbase';

import {
  SUPERUSER_EMAIL,
  SUPERUSER_PASSWORD,
  guestClient,
  rejectionOf,
  startServer,
  superuserClient,
  testingPocketBase,
} from './helpers.mjs';
import { extractOtp, extractToken, startSmtpSink } from './smtp-sink.mjs';

const PASSWORD = 'Us3r-Passw0rd!';
const NEW_PASSWORD = 'N3w-Passw0rd!x';
const USERS_COLLECTION_ID = '_pb_users_auth_';
/** How long a test waits for a mail the server should have sent. */
const MAIL_WAIT_MS = 5_000;

const FAILED_TO_AUTHENTICATE = { data: {}, message: 'Failed to authenticate.', status: 400 };
const INVALID_AUTH_TOKEN = { data: {}, message: 'The request requires valid record authorization token.', status: 401 };
const INVALID_OTP = { data: {}, message: 'Invalid or expired OTP.', status: 400 };

let emailCounter = 0;
/** A fresh address per call, so no flow sees another flow's mail. */
function uniqueEmail(tag) {
  emailCounter += 1;
  return `${tag}-${emailCounter}-${process.pid}@example.com`;
}

function jwtPayload(token) {
  const [, payload] = String(token).split('.');
  return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
}

/** Waits until the wall clock enters a new second, so that a freshly minted JWT (whose only varying claim is `exp`, in seconds) differs from the previous one. */
async function untilNextSecond() {
  await sleep(1_000 - (Date.now() % 1_000) + 20);
}

// ---------------------------------------------------------------------------
// Every JSON body any client of this file receives, for the "no secrets" check.

const seenResponses = [];

/** Makes `pb` remember every response body it receives (errors included). */
function watch(pb) {
  pb.afterSend = (response, data) => {
    seenResponses.push({ request: `${response.status} ${response.url}`, data });
    return data;
  };
  return pb;
}

/** Every record-shaped object (has `collectionId` and `collectionName`) inside `value`. */
function* recordsIn(value) {
  if (Array.isArray(value)) {
    for (const item of value) yield* recordsIn(item);
  } else if (value !== null && typeof value === 'object') {
    if (typeof value.collectionId === 'string' && typeof value.collectionName === 'string') yield value;
    for (const item of Object.values(value)) yield* recordsIn(item);
  }
}

// ---------------------------------------------------------------------------
// Server + sink per describe

/**
 * Starts a server and an SMTP sink and points the server's SMTP settings at the
 * sink (as the superuser, through the SDK).
 */
async function startAccountsServer() {
  const server = await startServer();
  let sink;
  try {
    sink = await startSmtpSink();
    const admin = watch(await superuserClient(server.url));
    await admin.settings.update({ smtp: { enabled: true, host: '127.0.0.1', port: sink.port } });
    return {
      url: server.url,
      sink,
      admin,
      async stop() {
        await sink.close();
        await server.stop();
      },
    };
  } catch (err) {
    await sink?.close();
    await server.stop();
    throw err;
  }
}

/** A guest client that records its responses. */
function client(env) {
  return watch(guestClient(env.url));
}

/** A user created by the superuser (verified false, email hidden from others). */
async function createUser(env, email = uniqueEmail('user'), password = PASSWORD) {
  return env.admin.collection('users').create({ email, password, passwordConfirm: password });
}

/** A client logged in as `email`. */
async function loggedIn(env, email, password = PASSWORD) {
  const pb = client(env);
  await pb.collection('users').authWithPassword(email, password);
  return pb;
}

/** The next mail to `to`; fails the test if none arrives in time. */
async function mailTo(env, to) {
  const mail = await env.sink.waitFor(to, MAIL_WAIT_MS);
  assert.ok(mail, `no mail to ${to} within ${MAIL_WAIT_MS} ms (sink holds ${env.sink.messages().length} for others)`);
  return mail;
}

function assertStatus(err, status) {
  assert.ok(err instanceof ClientResponseError, `expected ClientResponseError, got ${err}`);
  assert.equal(err.status, status, `response was ${err.responseJSON ?? JSON.stringify(err.response)}`);
}

// ---------------------------------------------------------------------------

describe('sign-up, login and the emailed account flows', () => {
  let env;

  before(async () => {
    env = await startAccountsServer();
  });

  after(async () => {
    await env?.stop();
  });

  test('the users collection offers password auth with email as the identity field', async () => {
    const methods = await client(env).collection('users').listAuthMethods();

    assert.deepEqual(methods.password, { enabled: true, identityFields: ['email'] });
    assert.deepEqual(methods.otp, { enabled: false, duration: 0 });
    assert.deepEqual(methods.mfa, { enabled: false, duration: 0 });
    assert.deepEqual(methods.oauth2, { enabled: false, providers: [] });
  });

  test('a guest signs up, confirms the emailed verification token and is then verified', async () => {
    const email = uniqueEmail('signup');
    const guest = client(env);

    const created = await guest.collection('users').create({ email, password: PASSWORD, passwordConfirm: PASSWORD });
    assert.equal(created.verified, false);
    assert.equal(await guest.collection('users').requestVerification(email), true);
    const token = extractToken(await mailTo(env, email));
    assert.ok(token, 'the verification mail must carry a token');
    const claims = jwtPayload(token);
    assert.equal(claims.type, 'verification');
    assert.equal(claims.id, created.id);
    assert.equal(claims.email, email);
    assert.equal(claims.collectionId, USERS_COLLECTION_ID);

    assert.equal(await guest.collection('users').confirmVerification(token), true);

    const pb = await loggedIn(env, email);
    assert.equal(pb.authStore.record.id, created.id);
    assert.equal(pb.authStore.record.verified, true);
  });

  test('a user logs in with email and password and authRefresh gives a new token for the same record', async () => {
    const email = uniqueEmail('login');
    const user = await createUser(env, email);
    const pb = client(env);

    const auth = await pb.collection('users').authWithPassword(email, PASSWORD);

    assert.equal(pb.authStore.isValid, true);
    assert.equal(pb.authStore.isSuperuser, false);
    assert.equal(pb.authStore.token, auth.token);
    assert.equal(auth.record.id, user.id);
    assert.equal(auth.record.email, email, 'auth responses always include the email');
    assert.equal(auth.record.collectionName, 'users');
    const claims = jwtPayload(auth.token);
    assert.equal(claims.type, 'auth');
    assert.equal(claims.id, user.id);
    assert.equal(claims.collectionId, USERS_COLLECTION_ID);
    assert.equal(claims.refreshable, true);

    await untilNextSecond();
    const refreshed = await pb.collection('users').authRefresh();

    assert.notEqual(refreshed.token, auth.token);
    assert.equal(refreshed.record.id, user.id);
    assert.equal(pb.authStore.token, refreshed.token);
    assert.equal(pb.authStore.record.id, user.id);
    assert.equal(pb.authStore.isValid, true);
    assert.ok(jwtPayload(refreshed.token).exp > claims.exp, 'the refreshed token expires later');
  });

  test('a password reset with the emailed token revokes every older token and the new password logs in', async () => {
    const email = uniqueEmail('reset');
    const user = await createUser(env, email);
    const first = await loggedIn(env, email);
    const second = await loggedIn(env, email);
    const guest = client(env);

    assert.equal(await guest.collection('users').requestPasswordReset(email), true);
    const token = extractToken(await mailTo(env, email));
    assert.ok(token, 'the password reset mail must carry a token');
    const claims = jwtPayload(token);
    assert.equal(claims.type, 'passwordReset');
    assert.equal(claims.id, user.id);
    assert.equal(claims.email, email);
    assert.equal(await guest.collection('users').confirmPasswordReset(token, NEW_PASSWORD, NEW_PASSWORD), true);

    for (const holder of [first, second]) {
      const err = await rejectionOf(() => holder.collection('users').authRefresh());
      assertStatus(err, 401);
      assert.deepEqual(err.response, INVALID_AUTH_TOKEN);
    }
    const reused = await rejectionOf(() =>
      guest.collection('users').confirmPasswordReset(token, 'An0ther-Passw0rd', 'An0ther-Passw0rd'),
    );
    assertStatus(reused, 400);
    assert.equal(reused.response.data?.token?.code, 'validation_invalid_token', reused.responseJSON);
    const oldPassword = await rejectionOf(() => client(env).collection('users').authWithPassword(email, PASSWORD));
    assertStatus(oldPassword, 400);
    assert.deepEqual(oldPassword.response, FAILED_TO_AUTHENTICATE);

    const pb = await loggedIn(env, email, NEW_PASSWORD);
    assert.equal(pb.authStore.record.id, user.id);
    assert.equal(pb.authStore.record.verified, true, 'a completed reset proves the address');
  });

  test('a password reset for an unknown email resolves and sends no mail', async () => {
    const email = uniqueEmail('nobody');
    const before = env.sink.messages().length;

    const result = await client(env).collection('users').requestPasswordReset(email);

    assert.equal(result, true);
    assert.equal(await env.sink.waitFor(email, 500), null);
    assert.equal(env.sink.messages().length, before, 'no mail at all was sent');
  });

  test('an email change is confirmed with the token mailed to the new address, which then logs in', async () => {
    const email = uniqueEmail('before-change');
    const newEmail = uniqueEmail('after-change');
    const user = await createUser(env, email);
    const pb = await loggedIn(env, email);

    assert.equal(await pb.collection('users').requestEmailChange(newEmail), true);
    const token = extractToken(await mailTo(env, newEmail));
    assert.ok(token, 'the email change mail must carry a token');
    const claims = jwtPayload(token);
    assert.equal(claims.type, 'emailChange');
    assert.equal(claims.id, user.id);
    assert.equal(claims.email, email);
    assert.equal(claims.newEmail, newEmail);
    assert.equal(await client(env).collection('users').confirmEmailChange(token, PASSWORD), true);

    const moved = await loggedIn(env, newEmail);
    assert.equal(moved.authStore.record.id, user.id);
    assert.equal(moved.authStore.record.email, newEmail);
    const oldAddress = await rejectionOf(() => client(env).collection('users').authWithPassword(email, PASSWORD));
    assertStatus(oldAddress, 400);
    assert.deepEqual(oldAddress.response, FAILED_TO_AUTHENTICATE);
    const oldSession = await rejectionOf(() => pb.collection('users').authRefresh());
    assertStatus(oldSession, 401);
    assert.deepEqual(oldSession.response, INVALID_AUTH_TOKEN, 'the email change revoked the old session');
  });

  test('a superuser impersonates a user: the new client holds a non-refreshable token for that user and reads its own record', async () => {
    const users = await env.admin.collections.getOne('users');
    assert.equal(users.viewRule, 'id = @request.auth.id', 'precondition: default users rules');
    const email = uniqueEmail('impersonated');
    const user = await createUser(env, email);
    const other = await createUser(env);

    const impersonated = await env.admin.collection('users').impersonate(user.id, 3600);
    watch(impersonated);

    assert.notEqual(impersonated, env.admin);
    assert.equal(impersonated.authStore.isValid, true);
    assert.equal(impersonated.authStore.isSuperuser, false);
    assert.equal(impersonated.authStore.record?.id, user.id);
    assert.equal('password' in impersonated.authStore.record, false);
    assert.equal('tokenKey' in impersonated.authStore.record, false);
    const claims = jwtPayload(impersonated.authStore.token);
    assert.equal(claims.type, 'auth');
    assert.equal(claims.id, user.id);
    assert.equal(claims.collectionId, USERS_COLLECTION_ID);
    assert.equal(claims.refreshable, false);
    const expected = Date.now() / 1000 + 3600;
    assert.ok(Math.abs(claims.exp - expected) < 60, `exp ${claims.exp} should be about now + 3600 s (${expected})`);
    assert.equal(env.admin.authStore.isSuperuser, true, 'the superuser client keeps its own session');

    const own = await impersonated.collection('users').getOne(user.id);
    assert.equal(own.id, user.id);
    assert.equal(own.email, email);
    const foreign = await rejectionOf(() => impersonated.collection('users').getOne(other.id));
    assertStatus(foreign, 404);
  });

  test('a user who calls impersonate is refused with 403', async () => {
    const email = uniqueEmail('would-be-impersonator');
    await createUser(env, email);
    const target = await createUser(env);
    const pb = await loggedIn(env, email);

    const err = await rejectionOf(() => pb.collection('users').impersonate(target.id, 3600));

    assertStatus(err, 403);
    assert.deepEqual(err.response, {
      data: {},
      message: 'The authorized record is not allowed to perform this action.',
      status: 403,
    });
  });
});

describe('one-time passwords and MFA', () => {
  let env;

  before(async () => {
    env = await startAccountsServer();
  });

  after(async () => {
    await env?.stop();
  });

  test('with OTP enabled a user logs in once with the emailed code, and the same code is then refused with 400', async () => {
    const users = await env.admin.collections.update('users', { otp: { enabled: true, length: 6 } });
    assert.equal(users.otp.enabled, true);
    assert.equal(users.otp.length, 6);
    const methods = await client(env).collection('users').listAuthMethods();
    assert.equal(methods.otp.enabled, true, JSON.stringify(methods.otp));
    const email = uniqueEmail('otp');
    const user = await createUser(env, email);
    const pb = client(env);

    const { otpId } = await pb.collection('users').requestOTP(email);
    assert.match(otpId, /^[a-z0-9]{15}$/);
    const code = extractOtp(await mailTo(env, email), 6);
    assert.match(String(code), /^\d{6}$/, 'the OTP mail must carry a 6-digit code');

    const auth = await pb.collection('users').authWithOTP(otpId, code);

    assert.equal(auth.record.id, user.id);
    assert.equal(pb.authStore.isValid, true);
    assert.equal(pb.authStore.record.id, user.id);
    const reused = await rejectionOf(() => client(env).collection('users').authWithOTP(otpId, code));
    assertStatus(reused, 400);
    assert.deepEqual(reused.response, INVALID_OTP);
  });

  test('an OTP request for an unknown email still answers with an otpId but sends nothing', async () => {
    await env.admin.collections.update('users', { otp: { enabled: true } });
    const email = uniqueEmail('otp-nobody');
    const pb = client(env);

    const { otpId } = await pb.collection('users').requestOTP(email);

    assert.match(otpId, /^[a-z0-9]{15}$/, 'a decoy id, so that addresses cannot be probed');
    assert.equal(await env.sink.waitFor(email, 500), null);
    const err = await rejectionOf(() => pb.collection('users').authWithOTP(otpId, '000000'));
    assertStatus(err, 400);
    assert.deepEqual(err.response, INVALID_OTP);
  });

  test('with MFA enabled a correct password answers 401 with an mfaId, and the emailed OTP passed with it completes the login', async () => {
    const users = await env.admin.collections.update('users', { mfa: { enabled: true }, otp: { enabled: true } });
    assert.equal(users.mfa.enabled, true);
    const otpLength = users.otp.length;
    const email = uniqueEmail('mfa');
    const user = await createUser(env, email);
    const pb = client(env);

    const challenge = await rejectionOf(() => pb.collection('users').authWithPassword(email, PASSWORD));

    assertStatus(challenge, 401);
    assert.deepEqual(Object.keys(challenge.response), ['mfaId'], 'the MFA challenge is not the error envelope');
    const { mfaId } = challenge.response;
    assert.match(String(mfaId), /^[a-z0-9]{15}$/, challenge.responseJSON);
    assert.equal(pb.authStore.isValid, false, 'the first factor alone logs nobody in');

    const { otpId } = await pb.collection('users').requestOTP(email);
    const code = extractOtp(await mailTo(env, email), otpLength);
    assert.ok(code, `the OTP mail must carry a ${otpLength}-digit code`);
    const auth = await pb.collection('users').authWithOTP(otpId, code, { mfaId });

    assert.equal(auth.record.id, user.id);
    assert.equal(pb.authStore.isValid, true);
    assert.equal(pb.authStore.record.id, user.id);
  });
});

describe('account protections', () => {
  let env;

  before(async () => {
    env = await startAccountsServer();
  });

  after(async () => {
    await env?.stop();
  });

  test('a user cannot mark their own account verified: 400 with validation_values_mismatch on verified', async () => {
    const email = uniqueEmail('self-verify');
    const guest = client(env);
    const user = await guest.collection('users').create({ email, password: PASSWORD, passwordConfirm: PASSWORD });
    const pb = await loggedIn(env, email);

    const err = await rejectionOf(() => pb.collection('users').update(user.id, { verified: true }));

    assertStatus(err, 400);
    assert.equal(err.response.message, 'Failed to update record.');
    // Only the code is checked: the field message differs (PocketBase: "Values don't match.",
    // Ferrobase: "Only superusers and managers can change the verified state.").
    assert.equal(err.response.data?.verified?.code, 'validation_values_mismatch', err.responseJSON);
    const stored = await env.admin.collection('users').getOne(user.id);
    assert.equal(stored.verified, false);
  });

  test('with public users rules another user sees a hidden email neither in a view nor in a list', async () => {
    await env.admin.collections.update('users', { listRule: '', viewRule: '' });
    const emailA = uniqueEmail('private-a');
    const emailB = uniqueEmail('viewer-b');
    const a = await createUser(env, emailA);
    const b = await createUser(env, emailB);
    assert.equal(a.emailVisibility, false);
    const pb = await loggedIn(env, emailB);

    const viewed = await pb.collection('users').getOne(a.id);
    const listed = await pb.collection('users').getFullList();

    assert.equal(viewed.id, a.id);
    assert.equal('email' in viewed, false, `keys: ${Object.keys(viewed)}`);
    const aInList = listed.find((r) => r.id === a.id);
    const bInList = listed.find((r) => r.id === b.id);
    assert.ok(aInList && bInList, 'both users are listed');
    assert.equal('email' in aInList, false, `keys: ${Object.keys(aInList)}`);
    assert.equal(bInList.email, emailB, 'a user still sees their own email');
  });

  test('no response ever contains a password or tokenKey', async () => {
    // A few more responses of every kind, then everything this file has seen.
    const email = uniqueEmail('no-secrets');
    const user = await client(env).collection('users').create({ email, password: PASSWORD, passwordConfirm: PASSWORD });
    const pb = await loggedIn(env, email);
    await pb.collection('users').getOne(user.id);
    await pb.collection('users').update(user.id, { name: 'Renamed' });
    await pb.collection('users').update(user.id, { oldPassword: PASSWORD, password: NEW_PASSWORD, passwordConfirm: NEW_PASSWORD });
    await pb.collection('users').authWithPassword(email, NEW_PASSWORD);
    await pb.collection('users').authRefresh();
    await pb.collection('users').getList(1, 50);
    const su = client(env);
    await su.collection('_superusers').authWithPassword(SUPERUSER_EMAIL, SUPERUSER_PASSWORD);
    await su.collection('_superusers').getFullList();
    await su.collection('users').getFullList();
    await su.collection('users').getOne(user.id);

    const offenders = [];
    let records = 0;
    for (const { request, data } of seenResponses) {
      for (const record of recordsIn(data)) {
        records += 1;
        const leaked = ['password', 'tokenKey'].filter((key) => key in record);
        if (leaked.length) offenders.push(`${request}: ${leaked.join(', ')} in ${JSON.stringify(record)}`);
      }
    }

    assert.ok(records >= 10, `expected to have checked many records, checked ${records}`);
    assert.deepEqual(offenders, []);
  });
});

describe('failed-login throttling', { skip: testingPocketBase && 'PocketBase has no always-on login throttle' }, () => {
  let env;

  before(async () => {
    env = await startAccountsServer();
  });

  after(async () => {
    await env?.stop();
  });

  test('the 11th rapid wrong password from the same client is rejected with 429, the first 10 with 400', async () => {
    const email = uniqueEmail('throttled');
    await createUser(env, email);
    const pb = client(env);

    const failures = [];
    for (let attempt = 1; attempt <= 11; attempt++) {
      failures.push(await rejectionOf(() => pb.collection('users').authWithPassword(email, `wrong-${attempt}`)));
    }

    assert.deepEqual(
      failures.map((err) => err.status),
      [400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 429],
      failures.map((err) => err.responseJSON).join('\n'),
    );
    assert.deepEqual(failures[10].response, { data: {}, message: 'Too Many Requests.', status: 429 });
  });
});
