import { useState } from 'preact/hooks';
import { api, fieldError, login } from '../api';
import { go } from '../router';
import { ErrorBanner, Row, ThemeToggle } from '../ui';

export function Login() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await login(email, password);
      // Stay on a deep link (`#/c/posts`) that led here; leave the login route.
      if (location.hash.startsWith('#/login')) go('');
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="auth-page">
      <form class="card auth-card" onSubmit={submit}>
        <h1>Ferrobase</h1>
        <p class="muted">Sign in as a superuser.</p>
        <ErrorBanner error={err} />
        <Row label="Email" error={fieldError(err, 'identity')}>
          {(id) => <input id={id} name="email" type="email" autoComplete="username" required value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} autoFocus />}
        </Row>
        <Row label="Password" error={fieldError(err, 'password')}>
          {(id) => <input id={id} name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />}
        </Row>
        <button class="btn primary block" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
        <div class="auth-foot"><ThemeToggle /></div>
      </form>
    </div>
  );
}

/** First run: `serve` printed `/_/#/pbinstal/TOKEN`; create the first superuser. */
export function Install({ token }: { token: string }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await api('POST', '/api/_install', { token, email, password, passwordConfirm: confirm });
      await login(email, password);
      go('');
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="auth-page">
      <form class="card auth-card" onSubmit={submit}>
        <h1>Welcome to Ferrobase</h1>
        <p class="muted">Create the first superuser. This link works once.</p>
        <ErrorBanner error={err} />
        <Row label="Email" error={fieldError(err, 'email')}>
          {(id) => <input id={id} name="email" type="email" autoComplete="username" required value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} autoFocus />}
        </Row>
        <Row label="Password" error={fieldError(err, 'password')} hint="At least 8 characters.">
          {(id) => <input id={id} name="password" type="password" autoComplete="new-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />}
        </Row>
        <Row label="Confirm password" error={fieldError(err, 'passwordConfirm')}>
          {(id) => <input id={id} name="passwordConfirm" type="password" autoComplete="new-password" required value={confirm} onInput={(e) => setConfirm((e.target as HTMLInputElement).value)} />}
        </Row>
        <button class="btn primary block" disabled={busy}>{busy ? 'Creating…' : 'Create superuser and sign in'}</button>
      </form>
    </div>
  );
}
