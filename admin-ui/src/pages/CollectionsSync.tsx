// Settings › Export collections and Import collections, as PocketBase's
// dashboard has them. Export shows the selected collections' JSON (copy or
// download as pb_schema.json); Import takes pasted or loaded JSON, shows a
// review of what would be added, changed and deleted, and only then calls
// `PUT /api/collections/import`, which applies all of it or nothing.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { diffImport, exportable, parseImport, show, sortedByType, CollectionChange, ValueChange } from '../schemaDiff';
import { ErrorBanner, Spinner, toast } from '../ui';
import { SettingsNav } from './Settings';

/** Every collection, page by page (the list endpoint caps perPage). */
async function allCollections(): Promise<any[]> {
  const out: any[] = [];
  for (let page = 1; page < 100; page++) {
    const r = await api('GET', '/api/collections', undefined, { page, perPage: 500 });
    out.push(...r.items);
    if (r.items.length === 0 || out.length >= r.totalItems) break;
  }
  return sortedByType(out.map(exportable));
}

export function ExportCollections() {
  const [list, setList] = useState<any[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  useEffect(() => {
    allCollections()
      .then((l) => { setList(l); setSelected(new Set(l.map((c) => c.id))); })
      .catch(setErr);
  }, []);
  const json = useMemo(() => JSON.stringify((list || []).filter((c) => selected.has(c.id)), null, 2), [list, selected]);

  const toggle = (id: string, on: boolean) => {
    const next = new Set(selected);
    if (on) next.add(id);
    else next.delete(id);
    setSelected(next);
  };
  const allOn = !!list?.length && selected.size === list.length;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(json);
      toast('Copied to the clipboard.');
    } catch {
      toast('Copying was refused by the browser; select the text and copy it.');
    }
  };
  const download = () => {
    const url = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'pb_schema.json';
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  return (
    <section class="page sync" aria-labelledby="export-title">
      <SettingsNav active="export-collections" />
      <div class="page-head">
        <h1 id="export-title">Export collections</h1>
      </div>
      {err ? <ErrorBanner error={err} /> : !list ? <Spinner /> : (
        <>
          <p class="muted">The configuration of the selected collections, to import into another Ferrobase or PocketBase.</p>
          <div class="export-panel">
            <fieldset class="export-list card" aria-label="Collections to export">
              <label class="check select-all">
                <input type="checkbox" data-testid="export-select-all" checked={allOn} onChange={() => setSelected(allOn ? new Set() : new Set(list.map((c) => c.id)))} />
                <span>Select all</span>
              </label>
              {list.map((c) => (
                <label class="check" key={c.id}>
                  <input type="checkbox" name={`export-${c.name}`} checked={selected.has(c.id)} onChange={(e) => toggle(c.id, (e.target as HTMLInputElement).checked)} />
                  <span>{c.name}{c.system && <span class="tag">system</span>}</span>
                </label>
              ))}
            </fieldset>
            <div class="export-preview">
              <pre data-testid="export-json" tabIndex={0} aria-label="Exported JSON">{json}</pre>
              <div class="actions-right">
                <span class="muted small">{selected.size} of {list.length} selected</span>
                <button type="button" class="btn" onClick={copy} disabled={!selected.size}>Copy</button>
                <button type="button" class="btn primary" onClick={download} disabled={!selected.size}>Download JSON</button>
              </div>
            </div>
          </div>
        </>
      )}
    </section>
  );
}

export function ImportCollections({ reload }: { reload: () => Promise<void> }) {
  const [current, setCurrent] = useState<any[] | null>(null);
  const [loadErr, setLoadErr] = useState<unknown>(null);
  const [raw, setRaw] = useState('');
  const [merge, setMerge] = useState(false);
  const [reviewing, setReviewing] = useState(false);
  const [importing, setImporting] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const fileRef = useRef<HTMLInputElement>(null);

  const loadCurrent = () => allCollections().then(setCurrent).catch(setLoadErr);
  useEffect(() => { loadCurrent(); }, []);

  const parsed = useMemo(() => parseImport(raw), [raw]);
  const diff = useMemo(() => (parsed.ok && current ? diffImport(current, parsed.collections, !merge) : null), [parsed, current, merge]);
  const hasChanges = !!diff && (diff.added.length + diff.changed.length + diff.deleted.length > 0);

  const edit = (v: string) => {
    setRaw(v);
    setReviewing(false);
    setErr(null);
    setDone(false);
  };
  const loadFile = (file: File | undefined) => {
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => edit(String(reader.result || ''));
    reader.onerror = () => setErr(new Error('The file could not be read.'));
    reader.readAsText(file);
    if (fileRef.current) fileRef.current.value = '';
  };
  const submit = async () => {
    if (!parsed.ok || importing) return;
    setImporting(true);
    setErr(null);
    try {
      await api('PUT', '/api/collections/import', { collections: parsed.collections, deleteMissing: !merge });
      await reload();
      await loadCurrent();
      setRaw('');
      setReviewing(false);
      setDone(true);
      toast('Collections imported.');
    } catch (e) {
      setErr(e);
    } finally {
      setImporting(false);
    }
  };

  if (loadErr) return <section class="page sync"><SettingsNav active="import-collections" /><ErrorBanner error={loadErr} /></section>;
  if (!current) return <section class="page sync"><SettingsNav active="import-collections" /><Spinner /></section>;
  const failed = failedCollection(err);

  return (
    <section class="page sync" aria-labelledby="import-title">
      <SettingsNav active="import-collections" />
      <div class="page-head">
        <h1 id="import-title">Import collections</h1>
        <div class="spacer" />
        <label class="btn small" for="import-file">Load from JSON file</label>
        <input id="import-file" ref={fileRef} type="file" accept=".json,application/json" class="sr-only" onChange={(e) => loadFile((e.target as HTMLInputElement).files?.[0])} />
      </div>
      {done && <div class="banner success" role="status" data-testid="import-done">The collections were imported.</div>}
      <p class="muted">Paste the collections configuration to import (as exported by Ferrobase or PocketBase), or load it from a file. Nothing changes before you confirm the review.</p>
      <div class={'row' + (raw && !parsed.ok ? ' has-error' : '')}>
        <label for="import-json">Collections</label>
        <textarea id="import-json" name="collections" rows={14} spellcheck={false} autoComplete="off" value={raw} aria-invalid={raw && !parsed.ok ? 'true' : undefined} aria-describedby="import-json-error" onInput={(e) => edit((e.target as HTMLTextAreaElement).value)} />
        {raw && !parsed.ok && <div id="import-json-error" class="field-error" role="alert" data-testid="import-parse-error">{parsed.error}</div>}
      </div>
      {parsed.ok && (
        <label class="check" title="On: collections left out of the import are kept. Off: they are deleted with their records, and fields left out of an imported collection are dropped.">
          <input type="checkbox" role="switch" name="merge" checked={merge} onChange={(e) => { setMerge((e.target as HTMLInputElement).checked); setReviewing(false); setErr(null); }} />
          <span>Merge with the existing collections</span>
        </label>
      )}
      {parsed.ok && diff && !hasChanges && <div class="banner success">Your collections configuration is already up to date.</div>}
      {!reviewing && (
        <div class="actions-right">
          {raw && <button type="button" class="btn ghost" onClick={() => edit('')}>Clear</button>}
          <button type="button" class="btn primary" disabled={!hasChanges} onClick={() => setReviewing(true)}>Review</button>
        </div>
      )}
      {reviewing && diff && (
        <div class="card import-review" data-testid="import-review">
          <h2>Review changes</h2>
          {diff.deleted.length > 0 && (
            <div class="banner error" role="alert">
              {diff.deleted.length === 1 ? 'One collection' : `${diff.deleted.length} collections`} will be deleted with all their records. Turn on “Merge with the existing collections” to keep collections left out of the import.
            </div>
          )}
          <ul class="change-list">
            {diff.deleted.map((c) => (
              <li class={'change deleted' + (failed === c.name ? ' has-error' : '')} data-change="deleted" data-collection={c.name}>
                <span class="label danger">Deleted</span> <strong>{c.name}</strong> <span class="muted small">{c.id}</span>
              </li>
            ))}
            {diff.changed.map((ch) => <ChangedItem ch={ch} failed={failed === ch.new.name || failed === ch.old.name} />)}
            {diff.added.map((c) => (
              <li class={'change added' + (failed === c.name ? ' has-error' : '')} data-change="added" data-collection={c.name}>
                <span class="label ok">Added</span> <strong>{c.name}</strong> <span class="muted small">{c.type || 'base'}{c.id ? ` · ${c.id}` : ''}</span>
                {Array.isArray(c.fields) && c.fields.length > 0 && <div class="muted small">Fields: {c.fields.map((f: any) => f.name).join(', ')}</div>}
              </li>
            ))}
          </ul>
          {err && <ImportError err={err} />}
          <div class="actions-right">
            <button type="button" class="btn" disabled={importing} onClick={() => { setReviewing(false); setErr(null); }}>Back</button>
            <button type="button" class={'btn ' + (diff.deleted.length || diff.changed.some((c) => c.removedFields.length) ? 'danger' : 'primary')} disabled={importing} data-testid="confirm-import" onClick={submit}>
              {importing ? 'Importing…' : 'Confirm and import'}
            </button>
          </div>
        </div>
      )}
    </section>
  );
}

function ChangedItem({ ch, failed }: { ch: CollectionChange; failed: boolean }) {
  const renamed = ch.old.name !== ch.new.name;
  const line = (c: ValueChange, rule = false) => (
    <li><code>{c.key}</code>: {show(c.from, rule)} → {show(c.to, rule)}</li>
  );
  return (
    <li class={'change changed' + (failed ? ' has-error' : '')} data-change="changed" data-collection={ch.new.name}>
      <span class="label warn">Changed</span> {renamed && <><s class="muted">{ch.old.name}</s> → </>}<strong>{ch.new.name}</strong> <span class="muted small">{ch.old.id}</span>
      <ul class="change-details">
        {ch.addedFields.map((f) => <li data-field-change="added">Field <strong>{f.name}</strong> added ({f.type})</li>)}
        {ch.removedFields.map((f) => <li data-field-change="removed" class="danger-text">Field <strong>{f.name}</strong> removed, with its data</li>)}
        {ch.changedFields.map((f) => (
          <li data-field-change="changed">
            Field <strong>{f.name}</strong> changed
            <ul>{f.changes.map((c) => line(c))}</ul>
          </li>
        ))}
        {ch.ruleChanges.map((c) => line(c, true))}
        {ch.otherChanges.map((c) => line(c))}
      </ul>
    </li>
  );
}

/** The collection a server refusal names (`… for collection "NAME" (id): …`). */
function failedCollection(err: unknown): string | undefined {
  if (!(err instanceof ApiError)) return undefined;
  const m = /collection "([^"]+)"/i.exec(String(err.data?.collections?.message || ''));
  return m?.[1];
}

function ImportError({ err }: { err: unknown }) {
  if (!(err instanceof ApiError) || typeof err.data?.collections?.message !== 'string') return <ErrorBanner error={err} />;
  return (
    <div class="banner error" role="alert" data-testid="import-error">
      <strong>{err.message}</strong> Nothing was changed.
      <pre class="import-error-detail">{err.data.collections.message}</pre>
    </div>
  );
}
