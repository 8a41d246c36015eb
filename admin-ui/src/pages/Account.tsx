// Public account pages reached from the links in auth mails
// (`#/auth/confirm-verification/TOKEN`, `…/confirm-password-reset/TOKEN`,
// `…/confirm-email-change/TOKEN`) and the OAuth2 redirect landing pages.
// They work without a superuser session and never send one: every call is a
// guest call. The collection comes from the token's `collectionId` claim,
// read here without checking the signature (the server checks it). The token
// stays in memory: it is never shown, logged or put into another address, and
// once used it is dropped from the address bar.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, fieldError, guestApi } from '../api';
import { ErrorBanner, Row, Spinner, ThemeToggle } from '../ui';

export const ACCOUNT_PAGES = ['confirm-verification', 'confirm-password-reset', 'confirm-email-change', 'oauth2-redirect-success', 'oauth2-redirect-failure'];

type Claims = { collectionId: string; email?: string; newEmail?: string };

/** The token's payload if it is a JWT with a string `collectionId` claim, else null. */
export function tokenClaims(token: string): Claims | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    // Only an id-like value goes into the request path: a forged `..` or `/`
    // must not steer the form's POST to another endpoint.
    if (!claims || typeof claims !== 'object' || typeof claims.collectionId !== 'string' || !/^[A-Za-z0-9_]{1,100}$/.test(claims.collectionId)) return null;
    return {
      collectionId: claims.collectionId,
      email: typeof claims.email === 'string' ? claims.email : undefined,
      newEmail: typeof claims.newEmail === 'string' ? claims.newEmail : undefined,
    };
  } catch {
    return null;
  }
}

/** Drops the used token from the address (and the history entry) without a route change. */
function forgetToken(page: string) {
  history.replaceState(null, '', `#/auth/${page}`);
}

export function AccountPage({ page, token }: { page: string; token: string }) {
  if (page === 'oauth2-redirect-success') return <Shell title="Signed in">
    <div class="banner success" role="status">Authentication completed. You can close this window and go back to the app.</div>
  </Shell>;
  if (page === 'oauth2-redirect-failure') return <Shell title="Sign-in failed">
    <div class="banner error" role="alert">Authentication failed. Close this window and try again from the app.</div>
  </Shell>;
  const claims = token ? tokenClaims(token) : null;
  if (!claims) return <Shell title="Link not valid">
    <div class="banner error" role="alert" data-testid="account-error">This link is invalid or incomplete. Ask for a new email and open its link again.</div>
  </Shell>;
  const base = `/api/collections/${encodeURIComponent(claims.collectionId)}`;
  if (page === 'confirm-verification') return <ConfirmVerification base={base} token={token} claims={claims} />;
  if (page === 'confirm-password-reset') return <ConfirmPasswordReset base={base} token={token} claims={claims} />;
  return <ConfirmEmailChange base={base} token={token} claims={claims} />;
}

function Shell({ title, children }: { title: string; children: any }) {
  useEffect(() => { document.title = title; }, [title]);
  return (
    <div class="auth-page">
      <div class="card auth-card account-card">
        <h1>{title}</h1>
        {children}
        <div class="auth-foot"><ThemeToggle /></div>
      </div>
    </div>
  );
}

type PageProps = { base: string; token: string; claims: Claims };

/** Confirms on open, as PocketBase's page does; on failure offers to send a new mail. */
function ConfirmVerification({ base, token, claims }: PageProps) {
  const [state, setState] = useState<'busy' | 'done' | 'failed'>('busy');
  const [resent, setResent] = useState<'no' | 'busy' | 'yes'>('no');
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    guestApi('POST', `${base}/confirm-verification`, { token })
      .then(() => { setState('done'); forgetToken('confirm-verification'); })
      .catch(() => setState('failed'));
  }, []);
  const resend = async () => {
    setResent('busy');
    setErr(null);
    try {
      await guestApi('POST', `${base}/request-verification`, { email: claims.email });
      setResent('yes');
    } catch (e) {
      setErr(e);
      setResent('no');
    }
  };
  return (
    <Shell title="Confirm verification">
      {state === 'busy' && <p class="muted" role="status"><Spinner /> Confirming your email…</p>}
      {state === 'done' && <div class="banner success" role="status" data-testid="account-success">Your email address has been verified.</div>}
      {state === 'failed' && (
        <>
          <div class="banner error" role="alert" data-testid="account-error">Invalid or expired verification link.</div>
          <ErrorBanner error={err} />
          {claims.email && resent !== 'yes' && <button type="button" class="btn block" disabled={resent === 'busy'} onClick={resend}>{resent === 'busy' ? 'Sending…' : 'Send a new verification email'}</button>}
          {resent === 'yes' && <p class="muted" role="status">Check {claims.email} for a new link.</p>}
        </>
      )}
    </Shell>
  );
}

/** A field error or, for a token the server refused, a line telling the visitor what to do. */
function tokenProblem(err: unknown) {
  return fieldError(err, 'token') ? 'Invalid or expired link. Ask for a new email and open its link again.' : undefined;
}

function ConfirmPasswordReset({ base, token, claims }: PageProps) {
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await guestApi('POST', `${base}/confirm-password-reset`, { token, password, passwordConfirm: confirm });
      setDone(true);
      forgetToken('confirm-password-reset');
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  };
  if (done) return <Shell title="Password changed"><div class="banner success" role="status" data-testid="account-success">Your password has been changed. You can sign in with the new one.</div></Shell>;
  return (
    <Shell title="Choose a new password">
      <form onSubmit={submit}>
        {claims.email && <p class="muted">For <strong>{claims.email}</strong>.</p>}
        {tokenProblem(err) ? <div class="banner error" role="alert" data-testid="account-error">{tokenProblem(err)}</div> : !(err instanceof ApiError && (fieldError(err, 'password') || fieldError(err, 'passwordConfirm'))) && <ErrorBanner error={err} />}
        <Row label="New password" error={fieldError(err, 'password')}>
          {(id) => <input id={id} name="password" type="password" autoComplete="new-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} autoFocus />}
        </Row>
        <Row label="Confirm new password" error={fieldError(err, 'passwordConfirm')}>
          {(id) => <input id={id} name="passwordConfirm" type="password" autoComplete="new-password" required value={confirm} onInput={(e) => setConfirm((e.target as HTMLInputElement).value)} />}
        </Row>
        <button class="btn primary block" disabled={busy}>{busy ? 'Saving…' : 'Set new password'}</button>
      </form>
    </Shell>
  );
}

function ConfirmEmailChange({ base, token, claims }: PageProps) {
  const [password, setPassword] = useState('');
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await guestApi('POST', `${base}/confirm-email-change`, { token, password });
      setDone(true);
      forgetToken('confirm-email-change');
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  };
  if (done) return <Shell title="Email changed"><div class="banner success" role="status" data-testid="account-success">Your email address has been changed. Sign in with the new one.</div></Shell>;
  return (
    <Shell title="Confirm new email">
      <form onSubmit={submit}>
        {claims.newEmail && <p class="muted">Change your email address to <strong>{claims.newEmail}</strong>.</p>}
        {tokenProblem(err) ? <div class="banner error" role="alert" data-testid="account-error">{tokenProblem(err)}</div> : !fieldError(err, 'password') && <ErrorBanner error={err} />}
        <Row label="Password" error={fieldError(err, 'password')} hint="Your current password, to confirm it is you.">
          {(id) => <input id={id} name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} autoFocus />}
        </Row>
        <button class="btn primary block" disabled={busy}>{busy ? 'Confirming…' : 'Confirm new email'}</button>
      </form>
    </Shell>
  );
}
