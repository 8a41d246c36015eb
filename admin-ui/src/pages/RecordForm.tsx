// Create or edit one record, with an input per field type. Files go up as
// multipart FormData (the other values in PocketBase's `@jsonPayload` part).
// A view collection's record is shown read-only (its rows come from a query).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, fieldError } from '../api';
import { go, href, listPath, setLeaveGuard, useLeaveGuard } from '../router';
import { isMulti } from '../schema';
import { Check, ErrorBanner, Row, Spinner, confirmDanger, toast, useDebounced } from '../ui';

type Props = { collection: any; collections: any[]; id: string };

export function RecordForm({ collection, collections, id }: Props) {
  const isView = collection.type === 'view';
  const isNew = id === 'new' && !isView;
  const [record, setRecord] = useState<any>(isNew ? blank(collection) : null);
  const [files, setFiles] = useState<Record<string, File[]>>({});
  const [removedFiles, setRemovedFiles] = useState<Record<string, string[]>>({});
  const [jsonText, setJsonText] = useState<Record<string, string>>({});
  const [password, setPassword] = useState({ password: '', passwordConfirm: '' });
  const [err, setErr] = useState<unknown>(null);
  const [loadErr, setLoadErr] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const [dirty, setDirty] = useState(false);
  useLeaveGuard(dirty, 'record changes');

  useEffect(() => {
    if (isNew || (isView && id === 'new')) return;
    api('GET', `/api/collections/${collection.id}/records/${id}`).then(setRecord).catch(setLoadErr);
  }, [id]);

  if (isView && id === 'new') return <div class="empty">View collections are read-only: their records come from the view query.</div>;
  if (loadErr) return <ErrorBanner error={loadErr} />;
  if (!record) return <Spinner />;
  const isAuth = collection.type === 'auth';
  const set = (k: string, v: any) => { setRecord({ ...record, [k]: v }); setDirty(true); };
  const fields = collection.fields.filter((f: any) => f.name !== 'id' && f.name !== 'tokenKey' && f.type !== 'password');
  const jsonErrors: Record<string, string> = {};
  for (const [k, t] of Object.entries(jsonText)) {
    if (t.trim() === '') continue;
    try { JSON.parse(t); } catch (e) { jsonErrors[k] = 'Invalid JSON: ' + (e as Error).message; }
  }

  const save = async (e: Event) => {
    e.preventDefault();
    if (Object.keys(jsonErrors).length) return;
    setSaving(true);
    setErr(null);
    try {
      const body: any = {};
      for (const f of fields) {
        if (f.type === 'autodate' || f.type === 'file') continue;
        if (f.type === 'json') {
          const t = jsonText[f.name];
          body[f.name] = t === undefined ? record[f.name] : t.trim() === '' ? null : JSON.parse(t);
        } else body[f.name] = record[f.name];
      }
      if (isNew && record.id) body.id = record.id;
      const pw = collection.fields.find((f: any) => f.type === 'password');
      if (pw && (isNew || password.password)) {
        body[pw.name] = password.password;
        body[pw.name + 'Confirm'] = password.passwordConfirm;
      }
      for (const [k, names] of Object.entries(removedFiles)) if (names.length) body[`${k}-`] = names;
      const hasFiles = Object.values(files).some((l) => l.length);
      let payload: any = body;
      if (hasFiles) {
        payload = new FormData();
        payload.append('@jsonPayload', JSON.stringify(body));
        for (const [k, list] of Object.entries(files)) for (const file of list) payload.append(k, file);
      }
      const saved = isNew
        ? await api('POST', `/api/collections/${collection.id}/records`, payload)
        : await api('PATCH', `/api/collections/${collection.id}/records/${record.id}`, payload);
      setDirty(false);
      setLeaveGuard(null);
      toast(isNew ? 'Record created.' : 'Record saved.');
      go(listPath(collection.name));
      void saved;
    } catch (e) {
      setErr(e);
    } finally {
      setSaving(false);
    }
  };
  const del = async () => {
    if (!(await confirmDanger(`Delete record ${record.id}? This cannot be undone.`))) return;
    try {
      await api('DELETE', `/api/collections/${collection.id}/records/${record.id}`);
      setDirty(false);
      setLeaveGuard(null);
      toast('Record deleted.');
      go(listPath(collection.name));
    } catch (e) {
      setErr(e);
    }
  };

  // Auth collections: the password pair sits right after the email field.
  const passwordRows = (
    <>
              <Row label={isNew ? 'Password' : 'New password'} error={fieldError(err, 'password')} hint={isNew ? undefined : 'Leave empty to keep the current one.'}>
                {(fid) => <input id={fid} name="password" type="password" autoComplete="new-password" value={password.password} onInput={(e) => (setPassword({ ...password, password: (e.target as HTMLInputElement).value }), setDirty(true))} />}
              </Row>
              <Row label="Confirm password" error={fieldError(err, 'passwordConfirm')}>
                {(fid) => <input id={fid} name="passwordConfirm" type="password" autoComplete="new-password" value={password.passwordConfirm} onInput={(e) => (setPassword({ ...password, passwordConfirm: (e.target as HTMLInputElement).value }), setDirty(true))} />}
              </Row>
            </>
  );
  return (
    <section class="page record-form" aria-labelledby="record-title">
      <form onSubmit={save} noValidate>
        <div class="page-head">
          <h1 id="record-title">{isNew ? `New ${collection.name} record` : <>{isView ? 'View' : 'Edit'} <code>{record.id}</code></>}</h1>
          {isView && <span class="tag">read-only</span>}
          <div class="spacer" />
          <a class="btn ghost" href={href(listPath(collection.name))}>{isView ? 'Back' : 'Cancel'}</a>
          {!isNew && !isView && <button type="button" class="btn danger-outline" onClick={del}>Delete</button>}
          {!isView && <button class="btn primary" disabled={saving} data-testid="save-record">{saving ? 'Saving…' : isNew ? 'Create' : 'Save changes'}</button>}
        </div>
        {err && <ErrorBanner error={err} />}
        <fieldset class="form-grid" disabled={isView}>
          <Row label="id" error={fieldError(err, 'id')} hint={isNew ? 'Leave empty to generate one.' : undefined}>
            {(fid) => <input id={fid} name="id" value={record.id} readOnly={!isNew} placeholder="auto" onInput={(e) => set('id', (e.target as HTMLInputElement).value)} />}
          </Row>
          {fields.map((f: any) => [
            <FieldInput key={f.name} f={f} value={record[f.name]} record={record} collection={collection} collections={collections}
              error={jsonErrors[f.name] || fieldError(err, f.name)}
              onChange={(v) => set(f.name, v)}
              jsonText={jsonText[f.name]} onJsonText={(t) => { setJsonText({ ...jsonText, [f.name]: t }); setDirty(true); }}
              files={files[f.name] || []} onFiles={(l) => { setFiles({ ...files, [f.name]: l }); setDirty(true); }}
              removed={removedFiles[f.name] || []} onRemoved={(l) => { setRemovedFiles({ ...removedFiles, [f.name]: l }); setDirty(true); }} />,
            isAuth && f.name === 'email' ? passwordRows : null,
          ])}
        </fieldset>
      </form>
    </section>
  );
}

function blank(collection: any) {
  const r: any = { id: '' };
  for (const f of collection.fields) {
    if (f.name === 'id') continue;
    r[f.name] = isMulti(f) ? [] : f.type === 'bool' ? false : f.type === 'number' ? null : f.type === 'json' ? null : f.type === 'geoPoint' ? { lon: 0, lat: 0 } : '';
  }
  return r;
}

type InputProps = {
  f: any; value: any; record: any; collection: any; collections: any[]; error?: string; onChange: (v: any) => void;
  jsonText?: string; onJsonText: (t: string) => void; files: File[]; onFiles: (l: File[]) => void; removed: string[]; onRemoved: (l: string[]) => void;
};

function FieldInput(p: InputProps) {
  const { f, value, onChange } = p;
  const label = f.name + (f.required ? ' *' : '');
  const hint = f.help || undefined;
  const strVal = (e: Event) => (e.target as HTMLInputElement).value;
  switch (f.type) {
    case 'bool':
      return (
        <div class={'row' + (p.error ? ' has-error' : '')}>
          <Check label={f.name === 'verified' ? 'verified (email confirmed)' : f.name} name={f.name} checked={!!value} onChange={onChange} />
          {p.error && <div class="field-error">{p.error}</div>}
        </div>
      );
    case 'number':
      return <Row label={label} error={p.error} hint={hint}>{(id) => <input id={id} name={f.name} type="number" step="any" value={value ?? ''} onInput={(e) => { const v = strVal(e); onChange(v === '' ? null : Number(v)); }} />}</Row>;
    case 'editor':
      return <Row label={label} error={p.error} hint={hint || 'HTML'} class="wide">{(id) => <textarea id={id} name={f.name} rows={5} value={value || ''} onInput={(e) => onChange(strVal(e))} />}</Row>;
    case 'date':
      return (
        <Row label={label + ' (UTC)'} error={p.error} hint={hint}>
          {(id) => <input id={id} name={f.name} type="datetime-local" step="1" value={toLocalInput(value)} onInput={(e) => onChange(fromLocalInput(strVal(e)))} />}
        </Row>
      );
    case 'autodate':
      return <Row label={f.name} hint="Set by the server.">{(id) => <input id={id} name={f.name} value={value || ''} readOnly />}</Row>;
    case 'select':
      if (isMulti(f))
        return (
          <fieldset class={'row' + (p.error ? ' has-error' : '')}>
            <legend>{label}</legend>
            <div class="checks">{f.values.map((v: string) => <Check label={v} checked={(value || []).includes(v)} onChange={(on) => onChange(on ? [...(value || []), v] : (value || []).filter((x: string) => x !== v))} />)}</div>
            {p.error && <div class="field-error">{p.error}</div>}
          </fieldset>
        );
      return (
        <Row label={label} error={p.error} hint={hint}>
          {(id) => (
            <select id={id} name={f.name} value={value || ''} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
              <option value="">—</option>
              {f.values.map((v: string) => <option value={v}>{v}</option>)}
            </select>
          )}
        </Row>
      );
    case 'json': {
      const text = p.jsonText ?? (value === null || value === undefined ? '' : JSON.stringify(value, null, 2));
      return <Row label={label} error={p.error} hint={hint || 'Any JSON value; empty = null.'} class="wide">{(id) => <textarea id={id} name={f.name} rows={4} spellcheck={false} class="mono" value={text} aria-invalid={!!p.error} onInput={(e) => p.onJsonText((e.target as HTMLTextAreaElement).value)} />}</Row>;
    }
    case 'geoPoint': {
      const v = value || { lon: 0, lat: 0 };
      return (
        <fieldset class={'row' + (p.error ? ' has-error' : '')}>
          <legend>{label}</legend>
          <div class="grid-2">
            <label>Longitude <input type="number" step="any" value={v.lon} onInput={(e) => onChange({ ...v, lon: Number(strVal(e)) })} /></label>
            <label>Latitude <input type="number" step="any" value={v.lat} onInput={(e) => onChange({ ...v, lat: Number(strVal(e)) })} /></label>
          </div>
          {p.error && <div class="field-error">{p.error}</div>}
        </fieldset>
      );
    }
    case 'relation':
      return <RelationPicker {...p} />;
    case 'file':
      return <FileInput {...p} />;
    default: {
      const type: any = f.type === 'email' ? 'email' : f.type === 'url' ? 'url' : 'text';
      return <Row label={label} error={p.error} hint={hint}>{(id) => <input id={id} name={f.name} type={type} value={value ?? ''} onInput={(e) => onChange(strVal(e))} />}</Row>;
    }
  }
}

function toLocalInput(v: string) {
  if (!v) return '';
  return v.replace(' ', 'T').replace(/(\.\d+)?Z$/, '').slice(0, 19);
}
function fromLocalInput(v: string) {
  if (!v) return '';
  const full = v.length === 16 ? v + ':00' : v;
  return full.replace('T', ' ') + '.000Z';
}

function RelationPicker(p: InputProps) {
  const { f, value, onChange } = p;
  const target = p.collections.find((c) => c.id === f.collectionId);
  const multi = isMulti(f);
  const ids: string[] = multi ? value || [] : value ? [value] : [];
  const [q, setQ] = useState('');
  const dq = useDebounced(q, 250);
  const [results, setResults] = useState<any[]>([]);
  const [err, setErr] = useState<unknown>(null);
  const label = useMemo(() => {
    const fs = target?.fields || [];
    return (fs.find((x: any) => x.presentable) || fs.find((x: any) => x.type === 'text' && x.name !== 'id' && !x.hidden) || fs.find((x: any) => x.name === 'email') || { name: 'id' }).name;
  }, [target]);
  useEffect(() => {
    if (!target) return;
    const esc = dq.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    const filter = dq ? (label === 'id' ? `id ~ '${esc}'` : `id ~ '${esc}' || ${label} ~ '${esc}'`) : '';
    api('GET', `/api/collections/${target.id}/records`, undefined, { perPage: 8, filter, skipTotal: 1 })
      .then((r) => { setResults(r.items); setErr(null); })
      .catch(setErr);
  }, [dq, target?.id]);
  // Labels of the selected records (those not among the current results are fetched once).
  const [known, setKnown] = useState<Record<string, string>>({});
  useEffect(() => {
    if (label === 'id' || !target) return;
    const next: Record<string, string> = { ...known };
    results.forEach((r) => (next[r.id] = String(r[label] ?? '')));
    const missing = ids.filter((id) => !(id in next) && /^[\w-]+$/.test(id));
    if (missing.length)
      api('GET', `/api/collections/${target.id}/records`, undefined, { perPage: missing.length, skipTotal: 1, filter: missing.map((id) => `id='${id}'`).join('||') })
        .then((r) => setKnown((k) => ({ ...k, ...Object.fromEntries(r.items.map((x: any) => [x.id, String(x[label] ?? '')])) })))
        .catch(() => {});
    setKnown(next);
  }, [results, ids.join(',')]);
  const add = (id: string) => onChange(multi ? [...ids.filter((x) => x !== id), id] : id);
  const drop = (id: string) => onChange(multi ? ids.filter((x) => x !== id) : '');
  const searchId = `rel-${f.name}`;
  return (
    <fieldset class={'row relation wide' + (p.error ? ' has-error' : '')} data-relation={f.name}>
      <legend>{f.name + (f.required ? ' *' : '')} <span class="muted small">→ {target?.name || '?'}{multi ? ` (up to ${f.maxSelect})` : ''}</span></legend>
      <div class="chips">
        {ids.length === 0 && <span class="muted small">Nothing selected.</span>}
        {ids.map((id) => (
          <span class="chip">
            <code>{id}</code>
            {known[id] && <span>{known[id]}</span>}
            <button type="button" aria-label={`Remove ${id}`} onClick={() => drop(id)}>✕</button>
          </span>
        ))}
      </div>
      <label class="sr-only" for={searchId}>Search {target?.name}</label>
      <input id={searchId} type="search" placeholder={`Search ${target?.name || ''} by id or ${label}`} value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
      {err && <div class="field-error">{(err as Error).message}</div>}
      <ul class="rel-results">
        {results.map((r) => (
          <li>
            <button type="button" class={ids.includes(r.id) ? 'on' : ''} aria-pressed={ids.includes(r.id)} onClick={() => (ids.includes(r.id) ? drop(r.id) : add(r.id))}>
              <code>{r.id}</code> {label !== 'id' && <span>{String(r[label] ?? '')}</span>}
            </button>
          </li>
        ))}
      </ul>
      {p.error && <div class="field-error">{p.error}</div>}
    </fieldset>
  );
}

function FileInput(p: InputProps) {
  const { f, value, record, collection } = p;
  const existing: string[] = (Array.isArray(value) ? value : value ? [value] : []).filter((n) => !p.removed.includes(n));
  const previews = useMemo(() => p.files.map((file) => ({ file, url: file.type.startsWith('image/') ? URL.createObjectURL(file) : '' })), [p.files]);
  useEffect(() => () => previews.forEach((x) => x.url && URL.revokeObjectURL(x.url)), [previews]);
  const id = `file-${f.name}`;
  return (
    <fieldset class={'row wide' + (p.error ? ' has-error' : '')}>
      <legend>{f.name + (f.required ? ' *' : '')} <span class="muted small">{isMulti(f) ? `up to ${f.maxSelect} files` : 'one file'}</span></legend>
      <div class="file-list">
        {existing.map((name) => (
          <span class="chip">
            {/\.(png|jpe?g|gif|webp|svg)$/i.test(name) && <img src={`/api/files/${collection.id}/${record.id}/${name}?thumb=100x100`} alt="" width={32} height={32} />}
            <a href={`/api/files/${collection.id}/${record.id}/${name}`} target="_blank" rel="noopener">{name}</a>
            <button type="button" aria-label={`Remove ${name}`} onClick={() => p.onRemoved([...p.removed, name])}>✕</button>
          </span>
        ))}
        {previews.map(({ file, url }) => (
          <span class="chip new">
            {url && <img src={url} alt={`Preview of ${file.name}`} width={32} height={32} />}
            {file.name}
            <button type="button" aria-label={`Remove ${file.name}`} onClick={() => p.onFiles(p.files.filter((x) => x !== file))}>✕</button>
          </span>
        ))}
      </div>
      <label class="sr-only" for={id}>Upload to {f.name}</label>
      <input id={id} type="file" multiple={isMulti(f)} accept={(f.mimeTypes || []).join(',') || undefined} onChange={(e) => {
        const list = Array.from((e.target as HTMLInputElement).files || []);
        p.onFiles(isMulti(f) ? [...p.files, ...list] : list.slice(0, 1));
        (e.target as HTMLInputElement).value = '';
      }} />
      {p.error && <div class="field-error">{p.error}</div>}
    </fieldset>
  );
}
