// The S3 form shared by the Files storage screen (`s3`) and the Backups
// screen (`backups.s3`): enabled, bucket, region, endpoint, access key,
// write-only secret, force path style; saves only its own section and tests
// the saved bucket with POST /api/settings/test/s3.
import { useEffect, useState } from 'preact/hooks';
import { api, fieldError } from '../api';
import { Check, ErrorBanner, Row, Spinner, toast } from '../ui';
import { SettingsNav } from './Settings';

/** Which S3 settings the form edits: files (`s3`) or backups (`backups.s3`). */
export type S3Target = 'storage' | 'backups';

const EMPTY = { enabled: false, bucket: '', region: '', endpoint: '', accessKey: '', forcePathStyle: false };
const FIELDS: [string, string, string][] = [
  ['bucket', 'Bucket', ''],
  ['region', 'Region', 'us-east-1'],
  ['endpoint', 'Endpoint', 'https://s3.us-east-1.amazonaws.com'],
  ['accessKey', 'Access key', ''],
];

function pick(settings: any, target: S3Target) {
  const s3 = target === 'backups' ? settings.backups?.s3 : settings.s3;
  return { ...EMPTY, ...(s3 || {}) };
}

/** `#/settings/storage`: where uploaded files are kept. */
export function StorageSettings() {
  return (
    <section class="page settings" aria-labelledby="storage-title">
      <SettingsNav active="storage" />
      <div class="page-head">
        <h1 id="storage-title">Files storage</h1>
      </div>
      <p class="hint">Uploaded files are kept on the local disk unless an S3-compatible bucket is enabled here. Files already stored are not moved: use <code>ferrobase storage migrate</code>.</p>
      <S3Form target="storage" />
    </section>
  );
}

/** `onSaved`: called after a save (the backups list reloads from the new place). */
export function S3Form({ target, onSaved }: { target: S3Target; onSaved?: () => void }) {
  const prefix = target === 'backups' ? 'backups.s3' : 's3';
  const [saved, setSaved] = useState<any>(null);
  const [form, setForm] = useState<any>(null);
  const [secret, setSecret] = useState('');
  const [err, setErr] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const [testing, setTesting] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; message: string } | null>(null);
  useEffect(() => {
    api('GET', '/api/settings')
      .then((s) => { const v = pick(s, target); setSaved(v); setForm(v); })
      .catch(setErr);
  }, [target]);
  if (!form) return err ? <ErrorBanner error={err} /> : <Spinner />;

  const dirty = secret !== '' || JSON.stringify(form) !== JSON.stringify(saved);
  const set = (patch: any) => { setForm({ ...form, ...patch }); setResult(null); };
  const save = async (e: Event) => {
    e.preventDefault();
    setSaving(true);
    setErr(null);
    setResult(null);
    try {
      const s3: any = { ...form };
      if (secret) s3.secret = secret;
      const body = target === 'backups' ? { backups: { s3 } } : { s3 };
      const v = pick(await api('PATCH', '/api/settings', body), target);
      setSaved(v);
      setForm(v);
      setSecret('');
      toast(target === 'backups' ? 'Backups storage saved.' : 'Files storage saved.');
      onSaved?.();
    } catch (e) {
      setErr(e);
    } finally {
      setSaving(false);
    }
  };
  const test = async () => {
    setTesting(true);
    setResult(null);
    try {
      await api('POST', '/api/settings/test/s3', { filesystem: target });
      setResult({ ok: true, message: 'S3 connection is successful.' });
    } catch (e) {
      setResult({ ok: false, message: e instanceof Error ? e.message : String(e) });
    } finally {
      setTesting(false);
    }
  };
  const title = target === 'backups' ? 'Store backups in S3' : 'Use S3 storage';
  return (
    <form class="card s3-form" data-testid={`s3-form-${target}`} onSubmit={save} noValidate aria-label={target === 'backups' ? 'Backups S3 storage' : 'Files S3 storage'}>
      {target === 'backups' && <h2>S3 storage for backups</h2>}
      {!!err && !fieldError(err, `${prefix}.enabled`) && <ErrorBanner error={err} />}
      <Check name={`${prefix}.enabled`} label={title} checked={!!form.enabled} onChange={(v) => set({ enabled: v })} />
      {fieldError(err, `${prefix}.enabled`) && <div class="field-error" role="alert">{fieldError(err, `${prefix}.enabled`)}</div>}
      {form.enabled && (
        <>
          <div class="grid-2">
            {FIELDS.map(([key, label, placeholder]) => (
              <Row label={label} error={fieldError(err, `${prefix}.${key}`)}>
                {(id) => <input id={id} name={`${prefix}.${key}`} placeholder={placeholder} spellcheck={false} value={form[key] ?? ''} onInput={(e) => set({ [key]: (e.target as HTMLInputElement).value })} />}
              </Row>
            ))}
            <Row label="Secret" hint="Write-only; leave empty to keep the saved one." error={fieldError(err, `${prefix}.secret`)}>
              {(id) => <input id={id} name={`${prefix}.secret`} type="password" autoComplete="new-password" value={secret} onInput={(e) => { setSecret((e.target as HTMLInputElement).value); setResult(null); }} />}
            </Row>
          </div>
          <Check name={`${prefix}.forcePathStyle`} label="Force path-style addressing (MinIO, Garage, moto…)" checked={!!form.forcePathStyle} onChange={(v) => set({ forcePathStyle: v })} />
        </>
      )}
      <div class="row end s3-actions">
        {saved.enabled && (
          <button type="button" class="btn" disabled={testing || dirty} title={dirty ? 'Save first: the test uses the saved settings.' : undefined} onClick={test}>
            {testing ? 'Testing…' : 'Test connection'}
          </button>
        )}
        <button class="btn primary" disabled={saving || !dirty}>{saving ? 'Saving…' : 'Save'}</button>
      </div>
      {result && (
        <div class={'banner ' + (result.ok ? 'success' : 'error')} role="status" data-testid={`s3-test-result-${target}`}>{result.message}</div>
      )}
    </form>
  );
}
