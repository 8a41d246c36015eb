// Application settings (GET/PATCH /api/settings): meta, SMTP, rate limits,
// batch and trusted proxy. Only changed sections are sent.
import { useEffect, useState } from 'preact/hooks';
import { api, fieldError } from '../api';
import { Check, ErrorBanner, Row, Spinner, toast } from '../ui';
import { href } from '../router';

/** The settings screens, as `#/settings/<key>` (the application settings at `#/settings`). */
const SETTINGS_PAGES: [string, string][] = [['', 'Application'], ['storage', 'Files storage'], ['export-collections', 'Export collections'], ['import-collections', 'Import collections']];

export function SettingsNav({ active }: { active: string }) {
  return (
    <nav class="subnav" aria-label="Settings">
      {SETTINGS_PAGES.map(([k, label]) => (
        <a href={href(k ? `settings/${k}` : 'settings')} class={active === k ? 'on' : ''} aria-current={active === k ? 'page' : undefined}>{label}</a>
      ))}
    </nav>
  );
}

export function Settings() {
  const [s, setS] = useState<any>(null);
  const [err, setErr] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const [smtpPassword, setSmtpPassword] = useState('');
  useEffect(() => { api('GET', '/api/settings').then(setS).catch(setErr); }, []);
  if (!s) return <section class="page settings"><SettingsNav active="" />{err ? <ErrorBanner error={err} /> : <Spinner />}</section>;

  const sec = (k: string, patch: any) => setS({ ...s, [k]: { ...s[k], ...patch } });
  const txt = (k: string, f: string, label: string, type: any = 'text') => (
    <Row label={label} error={fieldError(err, `${k}.${f}`)}>
      {(id) => <input id={id} name={`${k}.${f}`} type={type} value={s[k]?.[f] ?? ''} onInput={(e) => { const v = (e.target as HTMLInputElement).value; sec(k, { [f]: type === 'number' ? Number(v) : v }); }} />}
    </Row>
  );
  const save = async (e: Event) => {
    e.preventDefault();
    setSaving(true);
    setErr(null);
    try {
      const body: any = { meta: s.meta, smtp: { ...s.smtp }, rateLimits: s.rateLimits, batch: s.batch };
      if (smtpPassword) body.smtp.password = smtpPassword;
      if (s.trustedProxy) body.trustedProxy = s.trustedProxy;
      setS(await api('PATCH', '/api/settings', body));
      setSmtpPassword('');
      toast('Settings saved.');
    } catch (e) {
      setErr(e);
    } finally {
      setSaving(false);
    }
  };
  const rules: any[] = s.rateLimits?.rules || [];
  const setRule = (i: number, patch: any) => sec('rateLimits', { rules: rules.map((r, j) => (j === i ? { ...r, ...patch } : r)) });

  return (
    <section class="page settings" aria-labelledby="settings-title">
      <SettingsNav active="" />
      <form onSubmit={save} noValidate>
        <div class="page-head">
          <h1 id="settings-title">Settings</h1>
          <div class="spacer" />
          <button class="btn primary" disabled={saving}>{saving ? 'Saving…' : 'Save settings'}</button>
        </div>
        {err && <ErrorBanner error={err} />}
        <fieldset class="card">
          <legend>Application</legend>
          <div class="grid-2">
            {txt('meta', 'appName', 'Application name')}
            {txt('meta', 'appURL', 'Application URL', 'url')}
            {txt('meta', 'senderName', 'Sender name')}
            {txt('meta', 'senderAddress', 'Sender address', 'email')}
          </div>
        </fieldset>
        <fieldset class="card">
          <legend>Mail server (SMTP)</legend>
          <Check label="Send mail through SMTP" checked={!!s.smtp?.enabled} onChange={(v) => sec('smtp', { enabled: v })} />
          <div class="grid-3">
            {txt('smtp', 'host', 'Host')}
            {txt('smtp', 'port', 'Port', 'number')}
            {txt('smtp', 'username', 'Username')}
            <Row label="Password" hint="Write-only; leave empty to keep." error={fieldError(err, 'smtp.password')}>
              {(id) => <input id={id} type="password" autoComplete="new-password" value={smtpPassword} onInput={(e) => setSmtpPassword((e.target as HTMLInputElement).value)} />}
            </Row>
            {txt('smtp', 'localName', 'HELO name')}
            <Row label="Auth method" error={fieldError(err, 'smtp.authMethod')}>
              {(id) => (
                <select id={id} value={s.smtp?.authMethod || ''} onChange={(e) => sec('smtp', { authMethod: (e.target as HTMLSelectElement).value })}>
                  <option value="">default</option><option value="PLAIN">PLAIN</option><option value="LOGIN">LOGIN</option>
                </select>
              )}
            </Row>
          </div>
          <Check label="Implicit TLS" checked={!!s.smtp?.tls} onChange={(v) => sec('smtp', { tls: v })} />
        </fieldset>
        <fieldset class="card">
          <legend>Rate limits</legend>
          <Check label="Enable rate limiting" checked={!!s.rateLimits?.enabled} onChange={(v) => sec('rateLimits', { enabled: v })} />
          <table class="compact">
            <thead><tr><th>Label</th><th>Audience</th><th>Max requests</th><th>Per seconds</th><th /></tr></thead>
            <tbody>
              {rules.map((r, i) => (
                <tr>
                  <td><input aria-label="Label" value={r.label} onInput={(e) => setRule(i, { label: (e.target as HTMLInputElement).value })} /><CellError err={err} path={`rateLimits.rules.${i}.label`} /></td>
                  <td>
                    <select aria-label="Audience" value={r.audience} onChange={(e) => setRule(i, { audience: (e.target as HTMLSelectElement).value })}>
                      <option value="">everyone</option><option value="@guest">@guest</option><option value="@auth">@auth</option>
                    </select>
                    <CellError err={err} path={`rateLimits.rules.${i}.audience`} />
                  </td>
                  <td><input aria-label="Max requests" type="number" value={r.maxRequests} onInput={(e) => setRule(i, { maxRequests: Number((e.target as HTMLInputElement).value) })} /><CellError err={err} path={`rateLimits.rules.${i}.maxRequests`} /></td>
                  <td><input aria-label="Duration in seconds" type="number" value={r.duration} onInput={(e) => setRule(i, { duration: Number((e.target as HTMLInputElement).value) })} /><CellError err={err} path={`rateLimits.rules.${i}.duration`} /></td>
                  <td><button type="button" class="icon-btn danger" aria-label="Remove rule" onClick={() => sec('rateLimits', { rules: rules.filter((_, j) => j !== i) })}>✕</button></td>
                </tr>
              ))}
            </tbody>
          </table>
          <button type="button" class="btn small" onClick={() => sec('rateLimits', { rules: [...rules, { label: '/api/', audience: '', duration: 10, maxRequests: 300 }] })}>+ Add rule</button>
          <Row label="Excluded IPs" hint="Comma separated; never limited." error={fieldError(err, 'rateLimits.excludedIPs')}>
            {(id) => <ListText id={id} value={s.rateLimits?.excludedIPs || []} onChange={(v) => sec('rateLimits', { excludedIPs: v })} />}
          </Row>
        </fieldset>
        <fieldset class="card">
          <legend>Batch API</legend>
          <Check label="Enable /api/batch" checked={!!s.batch?.enabled} onChange={(v) => sec('batch', { enabled: v })} />
          <div class="grid-3">
            {txt('batch', 'maxRequests', 'Max requests per batch', 'number')}
            {txt('batch', 'timeout', 'Timeout (seconds)', 'number')}
            {txt('batch', 'maxBodySize', 'Max body size (bytes, 0 = default)', 'number')}
          </div>
        </fieldset>
        {s.trustedProxy && (
          <fieldset class="card">
            <legend>Trusted proxy</legend>
            <p class="hint">Headers that carry the client IP when the server runs behind a reverse proxy (rate limits and logs use it).</p>
            <Row label="Client IP headers" hint="Comma separated, e.g. X-Forwarded-For, X-Real-IP." error={fieldError(err, 'trustedProxy.headers')}>
              {(id) => <ListText id={id} value={s.trustedProxy.headers || []} onChange={(v) => sec('trustedProxy', { headers: v })} />}
            </Row>
            {'useLeftmostIp' in s.trustedProxy ? (
              <Check label="Use the leftmost IP of X-Forwarded-For" checked={!!s.trustedProxy.useLeftmostIp} onChange={(v) => sec('trustedProxy', { useLeftmostIp: v })} />
            ) : (
              <Check label="Use the leftmost IP of X-Forwarded-For" checked={!!s.trustedProxy.useLeftmostIP} onChange={(v) => sec('trustedProxy', { useLeftmostIP: v })} />
            )}
          </fieldset>
        )}
      </form>
    </section>
  );
}

function CellError({ err, path }: { err: unknown; path: string }) {
  const m = fieldError(err, path);
  return m ? <div class="field-error">{m}</div> : null;
}

/** A comma-separated list edited as text. */
function ListText({ id, value, onChange }: { id: string; value: string[]; onChange: (v: string[]) => void }) {
  const [text, setText] = useState(value.join(', '));
  return <input id={id} value={text} onInput={(e) => { const t = (e.target as HTMLInputElement).value; setText(t); onChange(t.split(',').map((x) => x.trim()).filter(Boolean)); }} />;
}
