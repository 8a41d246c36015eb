// Backups (GET/POST /api/backups): create with an optional name, upload a
// .zip, download through a short-lived file token, restore (the server
// restarts: the panel waits for /api/health and reloads) and delete; plus the
// automatic schedule kept in settings (backups.cron, backups.cronMaxKeep) and
// the S3 bucket backups go to (backups.s3).
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, fieldError } from '../api';
import { ErrorBanner, Row, Spinner, confirmDanger, toast } from '../ui';
import { S3Form } from './S3Settings';

export function formatBytes(n: number) {
  if (!(n >= 0)) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${units[i]}`;
}

export function Backups() {
  const [list, setList] = useState<any[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [name, setName] = useState('');
  const [creating, setCreating] = useState(false);
  const [createErr, setCreateErr] = useState<unknown>(null);
  const [uploading, setUploading] = useState(false);
  const [busyKey, setBusyKey] = useState('');
  const [restoring, setRestoring] = useState('');
  const fileRef = useRef<HTMLInputElement>(null);

  const load = () => api('GET', '/api/backups').then((l: any[]) => { setList([...l].sort((a, b) => (a.modified < b.modified ? 1 : -1))); setErr(null); }).catch(setErr);
  useEffect(() => { load(); }, []);

  const create = async (e: Event) => {
    e.preventDefault();
    setCreating(true);
    setCreateErr(null);
    try {
      const n = name.trim();
      await api('POST', '/api/backups', n ? { name: n } : {});
      toast(n ? `Backup ${n} created.` : 'Backup created.');
      setName('');
      await load();
    } catch (e) {
      setCreateErr(e);
    } finally {
      setCreating(false);
    }
  };

  const upload = async (e: Event) => {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = '';
    if (!file) return;
    setUploading(true);
    setErr(null);
    try {
      const fd = new FormData();
      fd.append('file', file);
      await api('POST', '/api/backups/upload', fd);
      toast(`Uploaded ${file.name}.`);
      await load();
    } catch (e) {
      setErr(e);
    } finally {
      setUploading(false);
    }
  };

  const download = async (key: string) => {
    setBusyKey(key);
    try {
      const { token } = await api('POST', '/api/files/token');
      const a = document.createElement('a');
      a.href = `/api/backups/${encodeURIComponent(key)}?token=${encodeURIComponent(token)}`;
      a.download = key;
      a.rel = 'noopener';
      document.body.appendChild(a);
      a.click();
      a.remove();
    } catch (e) {
      setErr(e);
    } finally {
      setBusyKey('');
    }
  };

  const remove = async (key: string) => {
    if (!(await confirmDanger(`Delete the backup “${key}”? This cannot be undone.`))) return;
    try {
      await api('DELETE', `/api/backups/${encodeURIComponent(key)}`);
      toast(`Deleted ${key}.`);
      await load();
    } catch (e) {
      setErr(e);
    }
  };

  const restore = async (key: string) => {
    if (!(await confirmDanger(`Restore the backup “${key}”? The current data is replaced by the backup's and the server restarts; changes made since the backup are lost.`, 'Restore'))) return;
    setErr(null);
    try {
      await api('POST', `/api/backups/${encodeURIComponent(key)}/restore`);
    } catch (e) {
      return setErr(e);
    }
    setRestoring(key);
    try {
      await waitForRestart();
      location.reload();
    } catch (e) {
      setRestoring('');
      setErr(e);
    }
  };

  return (
    <section class="page backups" aria-labelledby="backups-title">
      <div class="page-head">
        <h1 id="backups-title">Backups</h1>
        <div class="spacer" />
        <input ref={fileRef} type="file" accept=".zip,application/zip" class="sr-only" tabIndex={-1} aria-hidden="true" data-testid="backup-file" onChange={upload} />
        <button type="button" class="btn" disabled={uploading} onClick={() => fileRef.current?.click()}>{uploading ? 'Uploading…' : '⇪ Upload .zip'}</button>
      </div>
      {err && <ErrorBanner error={err} />}
      <form class="card create-backup" onSubmit={create} noValidate aria-busy={creating}>
        {!!createErr && !fieldError(createErr, 'name') && <ErrorBanner error={createErr} />}
        <Row label="New backup name" hint="Optional: lowercase letters, digits, _ and -, ending in .zip. Empty: a generated name." error={fieldError(createErr, 'name')}>
          {(id) => <input id={id} name="name" placeholder="pb_backup_….zip" value={name} spellcheck={false} disabled={creating} onInput={(e) => setName((e.target as HTMLInputElement).value)} />}
        </Row>
        <button class="btn primary" disabled={creating}>{creating ? <><span class="spinner inline" aria-hidden="true" />Creating…</> : 'Create backup'}</button>
      </form>
      <div class="table-wrap">
        <table class="backups-list">
          <thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th><th class="right">Actions</th></tr></thead>
          <tbody>
            {!list && !err && <tr><td colSpan={4}><Spinner /></td></tr>}
            {list && list.length === 0 && <tr><td colSpan={4} class="empty">No backups yet.</td></tr>}
            {list?.map((b) => (
              <tr key={b.key} data-key={b.key}>
                <td class="mono">{b.key}</td>
                <td class="num">{formatBytes(b.size)}</td>
                <td title={b.modified}>{String(b.modified).slice(0, 19)}</td>
                <td class="right"><div class="actions-cell">
                  <button type="button" class="btn small" disabled={busyKey === b.key} onClick={() => download(b.key)} aria-label={`Download ${b.key}`}>Download</button>
                  <button type="button" class="btn small" onClick={() => restore(b.key)} aria-label={`Restore ${b.key}`}>Restore</button>
                  <button type="button" class="btn small danger-outline" onClick={() => remove(b.key)} aria-label={`Delete ${b.key}`}>Delete</button>
                </div></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Schedule />
      <S3Form target="backups" onSaved={load} />
      {restoring && (
        <div class="overlay" role="alertdialog" aria-modal="true" aria-labelledby="restoring-msg">
          <div class="card">
            <Spinner />
            <p id="restoring-msg"><strong>Restoring {restoring}…</strong></p>
            <p class="muted small">The server restarts with the restored data; this page reloads when it is back. If the backup predates your superuser account, sign in again.</p>
          </div>
        </div>
      )}
    </section>
  );
}

/** Waits until the server went away (or 2.5 s passed) and answers /api/health again. */
async function waitForRestart() {
  const start = Date.now();
  let down = false;
  while (Date.now() - start < 60_000) {
    await new Promise((r) => setTimeout(r, 300));
    try {
      const r = await fetch('/api/health', { cache: 'no-store' });
      if (r.ok && (down || Date.now() - start > 2500)) return;
      if (!r.ok) down = true;
    } catch {
      down = true;
    }
  }
  throw new ApiError(0, 'The server did not come back within a minute.', {});
}

function Schedule() {
  const [cron, setCron] = useState('');
  const [keep, setKeep] = useState(3);
  const [loaded, setLoaded] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  useEffect(() => {
    api('GET', '/api/settings')
      .then((s) => { setCron(s.backups?.cron || ''); setKeep(s.backups?.cronMaxKeep ?? 3); setLoaded(true); })
      .catch(setErr);
  }, []);
  const save = async (e: Event) => {
    e.preventDefault();
    setSaving(true);
    setErr(null);
    try {
      const s = await api('PATCH', '/api/settings', { backups: { cron: cron.trim(), cronMaxKeep: keep } });
      setCron(s.backups?.cron || '');
      setKeep(s.backups?.cronMaxKeep ?? keep);
      toast(s.backups?.cron ? 'Backup schedule saved.' : 'Automatic backups turned off.');
    } catch (e) {
      setErr(e);
    } finally {
      setSaving(false);
    }
  };
  return (
    <form class="card schedule" onSubmit={save} noValidate aria-labelledby="schedule-title">
      <h2 id="schedule-title">Automatic backups</h2>
      {err && !fieldError(err, 'backups.cron') && !fieldError(err, 'backups.cronMaxKeep') && <ErrorBanner error={err} />}
      <div class="grid-3">
        <Row label="Cron expression" hint={<>e.g. <code>0 3 * * *</code> (daily at 03:00 UTC). Empty turns it off.</>} error={fieldError(err, 'backups.cron')}>
          {(id) => <input id={id} name="cron" class="mono" placeholder="0 3 * * *" value={cron} disabled={!loaded} spellcheck={false} onInput={(e) => setCron((e.target as HTMLInputElement).value)} />}
        </Row>
        <Row label="Keep the latest" hint="Older automatic backups are deleted." error={fieldError(err, 'backups.cronMaxKeep')}>
          {(id) => <input id={id} name="cronMaxKeep" type="number" min={1} value={keep} disabled={!loaded} onInput={(e) => setKeep(Number((e.target as HTMLInputElement).value))} />}
        </Row>
        <div class="row end">
          <button class="btn primary" disabled={saving || !loaded}>{saving ? 'Saving…' : 'Save schedule'}</button>
        </div>
      </div>
    </form>
  );
}
