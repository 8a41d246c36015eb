// Create or edit a collection: name and type, the field list (every field
// type with its options, reorder, rename, remove), API rules and indexes.
// A view collection gets a query editor instead: its fields are inferred by
// the server (POST /api/collections/meta/dry-run-view) and shown read-only,
// and only its list and view rules can be set.
// The draft is dry-run against the server (POST /api/collections/meta/validate)
// as you type, so rule errors show up before saving.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, api, fieldError } from '../api';
import { go, href, setLeaveGuard, useLeaveGuard } from '../router';
import { FIELD_TYPES, RULES, AUTH_RULES, TYPE_LABELS, followRenames, newField } from '../schema';
import { Check, ErrorBanner, ListInput, Row, Spinner, confirmDanger, toast, useDebounced } from '../ui';
import { RuleEditor, ruleCandidates } from './RuleEditor';
import { AUTH_OPTION_KEYS, AuthOptions, outgoingAuthOptions } from './auth-options';

type Props = { initial?: any; collections: any[]; reload: () => Promise<void> };
let keySeq = 0;
const withKeys = (c: any) => ({ ...c, fields: (c.fields || []).map((f: any) => ({ ...f, _k: ++keySeq })) });
// `searchFields` is the server's list derived from the fields' `searchable`
// option, which this editor edits: sending a stale copy back would be refused.
const stripKeys = ({ searchFields: _derived, ...c }: any) => ({ ...c, fields: c.fields.map(({ _k, ...f }: any) => f) });
const RULE_KEYS = [...RULES, ...AUTH_RULES].map(([k]) => k);
const VIEW_RULES = RULES.filter(([k]) => k === 'listRule' || k === 'viewRule');
/** What is sent to the server: no client keys, renamed fields followed in rules and indexes.
 * A view's fields come from its query, so they are left for the server to infer. */
const outgoing = (draft: any, initial: any) => {
  if (draft.type !== 'view') return outgoingAuthOptions(followRenames(stripKeys(draft), initial, RULE_KEYS));
  const { fields: _fields, ...rest } = stripKeys(draft);
  void _fields;
  return rest;
};

export function CollectionEditor({ initial, collections, reload }: Props) {
  const isNew = !initial;
  const [draft, setDraft] = useState<any>(initial ? withKeys(initial) : null);
  const [scaffolds, setScaffolds] = useState<any>(null);
  const [tab, setTab] = useState<'fields' | 'query' | 'rules' | 'indexes' | 'options'>(initial?.type === 'view' ? 'query' : 'fields');
  const [saveErr, setSaveErr] = useState<unknown>(null);
  const [liveErr, setLiveErr] = useState<unknown>(null);
  const [checking, setChecking] = useState(false);
  const [saving, setSaving] = useState(false);
  const [newType, setNewType] = useState('text');
  const [dirty, setDirty] = useState(false);
  useLeaveGuard(dirty, 'collection changes');

  useEffect(() => {
    if (!isNew) return;
    api('GET', '/api/collections/meta/scaffolds').then((s) => {
      setScaffolds(s);
      setDraft(withKeys(fromScaffold(s, 'base', '')));
    });
  }, []);

  // Live dry-run of the whole draft, debounced.
  const body = useMemo(() => (draft ? outgoing(draft, initial) : null), [draft]);
  const debounced = useDebounced(body, 400);
  useEffect(() => {
    if (!debounced || !debounced.name) return;
    let stale = false;
    setChecking(true);
    api('POST', '/api/collections/meta/validate', debounced)
      .then(() => !stale && setLiveErr(null))
      .catch((e) => !stale && setLiveErr(e))
      .finally(() => !stale && setChecking(false));
    return () => { stale = true; };
  }, [debounced]);

  if (!draft) return <Spinner />;
  const err = saveErr || liveErr;
  const set = (patch: any) => { setDraft({ ...draft, ...patch }); setSaveErr(null); setDirty(true); };
  const setField = (i: number, patch: any) => set({ fields: draft.fields.map((f: any, j: number) => (j === i ? { ...f, ...patch } : f)) });
  const move = (i: number, d: number) => {
    const fields = [...draft.fields];
    const j = i + d;
    if (j < 0 || j >= fields.length) return;
    [fields[i], fields[j]] = [fields[j], fields[i]];
    set({ fields });
  };
  const remove = (i: number) => set({ fields: draft.fields.filter((_: any, j: number) => j !== i) });
  const addField = () => {
    const taken = new Set(draft.fields.map((f: any) => f.name));
    let n = 1;
    while (taken.has(`field${n}`)) n++;
    const f = { ...newField(newType, `field${n}`, collections), _k: ++keySeq };
    // Keep autodate fields last, like PocketBase's UI does for created/updated.
    const fields = [...draft.fields];
    let at = fields.length;
    while (at > 0 && fields[at - 1].type === 'autodate' && fields[at - 1].system === false && ['created', 'updated'].includes(fields[at - 1].name)) at--;
    fields.splice(at, 0, f);
    set({ fields });
    setTimeout(() => (document.querySelector(`[data-field-key="${f._k}"] input[name="name"]`) as HTMLInputElement | null)?.select(), 0);
  };

  const save = async () => {
    setSaving(true);
    setSaveErr(null);
    try {
      if (!isNew && draft.type !== 'view') {
        const kept = new Set(draft.fields.map((f: any) => f.id).filter(Boolean));
        const dropped = initial.fields.filter((f: any) => !kept.has(f.id)).map((f: any) => f.name);
        if (dropped.length && !(await confirmDanger(`Drop field${dropped.length > 1 ? 's' : ''} ${dropped.join(', ')} and all ${dropped.length > 1 ? 'their' : 'its'} data? This cannot be undone.`, 'Drop and save'))) return;
      }
      const saved = isNew ? await api('POST', '/api/collections', outgoing(draft, initial)) : await api('PATCH', `/api/collections/${initial.id}`, outgoing(draft, initial));
      setDirty(false);
      setLeaveGuard(null);
      await reload();
      toast(`Saved collection ${saved.name}.`);
      go(`c/${saved.name}`);
    } catch (e) {
      setSaveErr(e);
      if (e instanceof ApiError && e.data?.viewQuery) setTab('query');
      else if (e instanceof ApiError && e.data?.fields) setTab(draft.type === 'view' ? 'query' : 'fields');
      else if (e instanceof ApiError && draft.type === 'auth' && AUTH_OPTION_KEYS.some((k) => e.data?.[k])) setTab('options');
    } finally {
      setSaving(false);
    }
  };
  const del = async () => {
    if (!(await confirmDanger(`Delete collection “${initial.name}” and all its records? This cannot be undone.`, 'Delete collection'))) return;
    try {
      await api('DELETE', `/api/collections/${initial.id}`);
      setDirty(false);
      setLeaveGuard(null);
      await reload();
      toast(`Deleted ${initial.name}.`);
      go('');
    } catch (e) {
      setSaveErr(e);
    }
  };

  const candidates = ruleCandidates(draft, collections);
  const isView = draft.type === 'view';
  const rules = draft.type === 'auth' ? [...RULES, ...AUTH_RULES] : isView ? VIEW_RULES : RULES;
  const ruleErr = (k: string) => fieldError(err, k);
  const tabErr = { fields: !!(err instanceof ApiError && err.data?.fields), query: !!(err instanceof ApiError && (err.data?.viewQuery || err.data?.fields)), rules: rules.some(([k]) => ruleErr(k)), indexes: !!(err instanceof ApiError && err.data?.indexes), options: draft.type === 'auth' && err instanceof ApiError && AUTH_OPTION_KEYS.some((k) => err.data?.[k]) };

  return (
    <section class="page editor" aria-labelledby="editor-title">
      <div class="page-head">
        <h1 id="editor-title">{isNew ? 'New collection' : <>Edit <span class="accent">{initial.name}</span></>}</h1>
        <div class="spacer" />
        {!isNew && <a class="btn ghost" href={href(`c/${initial.name}`)}>Cancel</a>}
        {!isNew && !initial.system && <button type="button" class="btn danger-outline" onClick={del}>Delete collection</button>}
        <button type="button" class="btn primary" onClick={save} disabled={saving} data-testid="save-collection">{saving ? 'Saving…' : isNew ? 'Create' : 'Save changes'}</button>
      </div>
      {saveErr && <ErrorBanner error={saveErr} />}
      <div class="grid-2">
        <Row label="Name" error={fieldError(err, 'name')}>
          {(id) => <input id={id} name="collection-name" value={draft.name} disabled={draft.system} placeholder="e.g. posts" onInput={(e) => set({ name: (e.target as HTMLInputElement).value })} autoFocus={isNew} />}
        </Row>
        <Row label="Type" error={fieldError(err, 'type')}>
          {(id) => (
            <select id={id} value={draft.type} disabled={!isNew} onChange={(e) => {
              const t = (e.target as HTMLSelectElement).value;
              set(withKeys(fromScaffold(scaffolds, t, draft.name)));
              setTab(t === 'view' ? 'query' : 'fields');
            }}>
              <option value="base">Base</option>
              <option value="auth">Auth (users that can sign in)</option>
              <option value="view">View (read-only, from a SELECT query)</option>
            </select>
          )}
        </Row>
      </div>
      <div class="tabs" role="tablist">
        {(isView ? ['query', 'rules'] : ['fields', 'rules', 'indexes', ...(draft.type === 'auth' ? ['options'] : [])]).map((t: any) => (
          <button type="button" role="tab" aria-selected={tab === t} class={tab === t ? 'on' : ''} onClick={() => setTab(t)}>
            {t === 'fields' ? `Fields (${draft.fields.length})` : t === 'query' ? 'Query' : t === 'rules' ? 'API rules' : t === 'indexes' ? `Indexes (${draft.indexes.length})` : 'Auth options'}
            {(tabErr as any)[t] && <span class="dot-error" aria-label="has errors" />}
          </button>
        ))}
        <span class="spacer" />
        <span class="muted small" aria-live="polite">{checking ? 'Checking with the server…' : liveErr ? '' : draft.name ? '✓ Server accepts this draft' : ''}</span>
      </div>

      {tab === 'query' && isView && <ViewQuery draft={draft} set={set} err={err} />}

      {tab === 'fields' && !isView && (
        <div role="tabpanel" class="fields">
          {typeof fieldError(err, 'fields') === 'string' && <div class="field-error">{fieldError(err, 'fields')}</div>}
          {/* The collection-level list (`searchFields`) is derived from each field's option, edited on its card. */}
          <p class="muted small" data-testid="search-fields">
            Full-text search: {draft.fields.some((f: any) => f.searchable)
              ? draft.fields.filter((f: any) => f.searchable).map((f: any) => f.name).join(', ')
              : 'no searchable fields'} <span>(set per field: Searchable)</span>
          </p>
          {draft.fields.map((f: any, i: number) => (
            <FieldCard key={f._k} f={f} i={i} n={draft.fields.length} err={err} collections={collections} self={draft}
              onChange={(patch) => setField(i, patch)} onMove={(d) => move(i, d)}
              onRemove={async () => {
                if (f.id && initial?.fields.some((x: any) => x.id === f.id) && !(await confirmDanger(`Remove field “${f.name}”? Its data is dropped when you save.`, 'Remove field'))) return;
                remove(i);
              }} />
          ))}
          <div class="add-field">
            <label for="new-field-type">New field type</label>
            <select id="new-field-type" value={newType} onChange={(e) => setNewType((e.target as HTMLSelectElement).value)}>
              {FIELD_TYPES.map((t) => <option value={t}>{TYPE_LABELS[t]}</option>)}
            </select>
            <button type="button" class="btn" onClick={addField}>+ Add field</button>
          </div>
        </div>
      )}

      {tab === 'rules' && (
        <div role="tabpanel" class="rules">
          <p class="muted">
            <strong>Superusers only</strong> (<code>null</code>) locks the action; <strong>Public</strong> (<code>""</code>) opens it to everyone. Expressions use the filter
            language; type to complete field names and <code>@request.*</code>.
          </p>
          {rules.map(([k, label]) => (
            <RuleEditor key={k} ruleKey={k} label={label} value={draft[k] ?? null} allowPublic={k !== 'manageRule'}
              onChange={(v) => set({ [k]: v })} error={ruleErr(k)} checking={checking} candidates={candidates} />
          ))}
        </div>
      )}

      {tab === 'indexes' && !isView && <Indexes draft={draft} set={set} err={err} />}
      {tab === 'options' && <AuthOptions draft={draft} set={set} err={err} initial={initial} collections={collections} checking={checking} dirty={dirty} />}
    </section>
  );
}

function fromScaffold(s: any, type: string, name: string) {
  const c = JSON.parse(JSON.stringify(s[type]));
  delete c.id;
  delete c.created;
  delete c.updated;
  c.name = name;
  if (type === 'base') {
    c.listRule = c.viewRule = c.createRule = c.updateRule = c.deleteRule = null;
  }
  if (type === 'view') {
    // Fields come from the query; a view has no create/update/delete rules.
    c.fields = [];
    c.listRule = c.viewRule = null;
    c.viewQuery = c.viewQuery || '';
    return c;
  }
  // As PocketBase's UI does: new collections get created/updated autodate fields.
  c.fields = [
    ...c.fields,
    { name: 'created', type: 'autodate', hidden: false, presentable: false, system: false, onCreate: true, onUpdate: false },
    { name: 'updated', type: 'autodate', hidden: false, presentable: false, system: false, onCreate: true, onUpdate: true },
  ];
  return c;
}

type CardProps = { f: any; i: number; n: number; err: unknown; collections: any[]; self: any; onChange: (p: any) => void; onMove: (d: number) => void; onRemove: () => void };

function FieldCard({ f, i, n, err, collections, self, onChange, onMove, onRemove }: CardProps) {
  const [open, setOpen] = useState(!f.id);
  const e = (k: string) => fieldError(err, `fields.${i}.${k}`);
  const anyErr = err instanceof ApiError && err.data?.fields?.[i];
  const locked = !!f.system;
  const num = (k: string, label: string, nullable = false) => (
    <Row label={label} error={e(k)}>
      {(id) => <input id={id} type="number" name={k} value={f[k] ?? ''} onInput={(ev) => { const v = (ev.target as HTMLInputElement).value; onChange({ [k]: v === '' ? (nullable ? null : 0) : Number(v) }); }} />}
    </Row>
  );
  const text = (k: string, label: string, placeholder = '') => (
    <Row label={label} error={e(k)}>
      {(id) => <input id={id} name={k} value={f[k] ?? ''} placeholder={placeholder} onInput={(ev) => onChange({ [k]: (ev.target as HTMLInputElement).value })} />}
    </Row>
  );
  const list = (k: string, label: string, placeholder = '') => (
    <Row label={label} error={e(k)} hint="Comma separated.">
      {(id) => <ListInput id={id} name={k} value={f[k] || []} placeholder={placeholder} onChange={(v) => onChange({ [k]: v })} />}
    </Row>
  );
  const check = (k: string, label: string) => <Check label={label} name={k} checked={!!f[k]} onChange={(v) => onChange({ [k]: v })} />;

  return (
    <div class={'field-card' + (anyErr ? ' has-error' : '')} data-field-key={f._k} data-field-name={f.name}>
      <div class="field-head">
        <span class={'type-badge t-' + f.type} title={TYPE_LABELS[f.type]}>{TYPE_LABELS[f.type] || f.type}</span>
        <label class="sr-only" for={`fname-${f._k}`}>Field name</label>
        <input id={`fname-${f._k}`} name="name" class="field-name" value={f.name} disabled={locked} aria-invalid={!!e('name')} onInput={(ev) => onChange({ name: (ev.target as HTMLInputElement).value })} />
        {locked && <span class="tag">system</span>}
        <div class="spacer" />
        <button type="button" class="icon-btn" title="Move up" aria-label={`Move ${f.name} up`} disabled={i === 0} onClick={() => onMove(-1)}>↑</button>
        <button type="button" class="icon-btn" title="Move down" aria-label={`Move ${f.name} down`} disabled={i === n - 1} onClick={() => onMove(1)}>↓</button>
        <button type="button" class="icon-btn" aria-expanded={open} aria-label={`${open ? 'Hide' : 'Show'} options of ${f.name}`} onClick={() => setOpen(!open)}>⚙</button>
        {!locked && <button type="button" class="icon-btn danger" aria-label={`Remove field ${f.name}`} title="Remove field" onClick={onRemove}>✕</button>}
      </div>
      {e('name') && <div class="field-error">{e('name')}</div>}
      {open && (
        <div class="field-opts">
          <div class="checks">
            {f.type !== 'autodate' && check('required', 'Required')}
            {check('hidden', 'Hidden')}
            {check('presentable', 'Presentable')}
          </div>
          <div class="grid-3">
            {f.type === 'text' && <>{num('min', 'Min length')}{num('max', 'Max length')}{text('pattern', 'Regex pattern', '^[a-z]+$')}{text('autogeneratePattern', 'Autogenerate pattern', '[a-z0-9]{15}')}</>}
            {f.type === 'editor' && <>{num('maxSize', 'Max size (bytes)')}<div class="checks">{check('convertURLs', 'Convert URLs')}</div></>}
            {f.type === 'number' && <>{num('min', 'Min', true)}{num('max', 'Max', true)}<div class="checks">{check('onlyInt', 'Integers only')}</div></>}
            {(f.type === 'email' || f.type === 'url') && <>{list('exceptDomains', 'Except domains', 'spam.com')}{list('onlyDomains', 'Only domains', 'example.com')}</>}
            {f.type === 'date' && <>{text('min', 'Min date', '2024-01-01 00:00:00.000Z')}{text('max', 'Max date', '2030-01-01 00:00:00.000Z')}</>}
            {f.type === 'autodate' && <div class="checks">{check('onCreate', 'Set on create')}{check('onUpdate', 'Set on update')}</div>}
            {f.type === 'select' && <>{list('values', 'Choices', 'draft, published')}{num('maxSelect', 'Max select')}</>}
            {f.type === 'file' && <>{num('maxSelect', 'Max files')}{num('maxSize', 'Max size (bytes)')}{list('mimeTypes', 'MIME types', 'image/png, image/jpeg')}{list('thumbs', 'Thumb sizes', '100x100, 0x300')}<div class="checks">{check('protected', 'Protected')}</div></>}
            {f.type === 'relation' && (
              <>
                <Row label="Related collection" error={e('collectionId')}>
                  {(id) => (
                    <select id={id} name="collectionId" value={f.collectionId} onChange={(ev) => onChange({ collectionId: (ev.target as HTMLSelectElement).value })}>
                      {self.id && <option value={self.id}>{self.name} (this collection)</option>}
                      {collections.filter((c) => c.id !== self.id).map((c) => <option value={c.id}>{c.name}</option>)}
                    </select>
                  )}
                </Row>
                {num('minSelect', 'Min select')}
                {num('maxSelect', 'Max select')}
                <div class="checks">{check('cascadeDelete', 'Cascade delete')}</div>
              </>
            )}
            {f.type === 'json' && num('maxSize', 'Max size (bytes)')}
            {f.type === 'password' && <>{num('min', 'Min length')}{num('max', 'Max length')}{text('pattern', 'Regex pattern')}{num('cost', 'Cost')}</>}
            {f.type !== 'autodate' && text('help', 'Help text')}
          </div>
          {SEARCHABLE_TYPES.has(f.type) && <SearchOptions f={f} e={e} onChange={onChange} />}
        </div>
      )}
    </div>
  );
}

/** Field types the server can put in a collection's full-text index. */
const SEARCHABLE_TYPES = new Set(['text', 'editor', 'email', 'url', 'select', 'json']);

/**
 * The full-text search options of a text-like field: `searchable`, its BM25
 * `searchWeight` and `searchTrigram` (substring matching). Switching search
 * off drops the keys, as the server leaves them out for unsearchable fields.
 */
function SearchOptions({ f, e, onChange }: { f: any; e: (k: string) => string | undefined; onChange: (p: any) => void }) {
  const toggle = (on: boolean) => onChange(on ? { searchable: true, searchWeight: f.searchWeight ?? 1, searchTrigram: !!f.searchTrigram } : { searchable: undefined, searchWeight: undefined, searchTrigram: undefined });
  return (
    <div class="search-opts" data-testid="search-opts">
      <div class="checks">
        <Check label="Searchable (full-text)" name="searchable" checked={!!f.searchable} onChange={toggle} />
        {f.searchable && <Check label="Substring (trigram)" name="searchTrigram" title="Match parts of words (names, codes); terms need 3+ characters" checked={!!f.searchTrigram} onChange={(v) => onChange({ searchTrigram: v })} />}
      </div>
      {e('searchable') && <div class="field-error">{e('searchable')}</div>}
      {f.searchable && (
        <div class="grid-3">
          <Row label="Search weight" error={e('searchWeight')} hint="Ranking weight, greater than 0 (default 1).">
            {(id) => <input id={id} type="number" name="searchWeight" min="0" step="any" value={f.searchWeight ?? ''} onInput={(ev) => { const v = (ev.target as HTMLInputElement).value; onChange({ searchWeight: v === '' ? 1 : Number(v) }); }} />}
          </Row>
        </div>
      )}
    </div>
  );
}

function Indexes({ draft, set, err }: { draft: any; set: (p: any) => void; err: unknown }) {
  const [text, setText] = useState('');
  const cols = draft.fields.filter((f: any) => !f.system || f.name === 'email').map((f: any) => f.name);
  const template = (unique: boolean, col: string) => `CREATE ${unique ? 'UNIQUE ' : ''}INDEX \`idx_${draft.name || 'c'}_${col}\` ON \`${draft.name || 'c'}\` (\`${col}\`)`;
  return (
    <div role="tabpanel" class="indexes">
      <ul class="index-list">
        {draft.indexes.map((ix: string, i: number) => (
          <li>
            <code>{ix}</code>
            {fieldError(err, `indexes.${i}`) && <div class="field-error">{fieldError(err, `indexes.${i}`)}</div>}
            <button type="button" class="icon-btn danger" aria-label="Remove index" onClick={() => set({ indexes: draft.indexes.filter((_: any, j: number) => j !== i) })}>✕</button>
          </li>
        ))}
        {draft.indexes.length === 0 && <li class="muted">No indexes.</li>}
      </ul>
      {fieldError(err, 'indexes') && <div class="field-error">{fieldError(err, 'indexes')}</div>}
      <Row label="Add index (CREATE INDEX statement)">
        {(id) => <textarea id={id} rows={2} spellcheck={false} value={text} placeholder={cols[0] ? template(false, cols[0]) : 'CREATE INDEX …'} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />}
      </Row>
      <div class="actions-left">
        <button type="button" class="btn" disabled={!text.trim()} onClick={() => { set({ indexes: [...draft.indexes, text.trim()] }); setText(''); }}>+ Add index</button>
        {cols.slice(0, 4).map((c: string) => <button type="button" class="btn ghost small" onClick={() => setText(template(false, c))}>template: {c}</button>)}
      </div>
    </div>
  );
}

/**
 * A view's SELECT query and the fields the server infers from it, asked for
 * (debounced) through dry-run-view as the query changes. The server's error
 * on `viewQuery` (from the live validation or the save) is shown under it.
 */
function ViewQuery({ draft, set, err }: { draft: any; set: (p: any) => void; err: unknown }) {
  const query = useDebounced(draft.viewQuery || '', 400);
  const [inferred, setInferred] = useState<{ fields: any[] } | null>(null);
  const [dryErr, setDryErr] = useState<unknown>(null);
  useEffect(() => {
    if (!query.trim()) { setInferred(null); setDryErr(null); return; }
    let stale = false;
    api('POST', '/api/collections/meta/dry-run-view', { query })
      .then((r) => { if (!stale) { setInferred(r); setDryErr(null); } })
      .catch((e) => { if (!stale) { setInferred(null); setDryErr(e); } });
    return () => { stale = true; };
  }, [query]);
  const queryErr = fieldError(err, 'viewQuery') || (dryErr instanceof Error ? dryErr.message : undefined);
  const fields: any[] = inferred?.fields || (query === (draft.viewQuery || '') && !dryErr ? draft.fields : []);
  return (
    <div role="tabpanel" class="view-query">
      <Row label="Select query" error={queryErr} hint={<>One <code>SELECT</code> with an <code>id</code> column, e.g. <code>SELECT id, title FROM posts</code>. Each row becomes a read-only record.</>}>
        {(id) => <textarea id={id} name="viewQuery" rows={6} spellcheck={false} aria-invalid={!!queryErr} value={draft.viewQuery || ''} placeholder="SELECT id, name FROM users" onInput={(e) => set({ viewQuery: (e.target as HTMLTextAreaElement).value })} />}
      </Row>
      <h2 class="small muted">Fields inferred from the query (read-only)</h2>
      <div class="fields readonly-fields" data-testid="view-fields">
        {fields.map((f: any) => (
          <div class="field-card" data-field-name={f.name}>
            <div class="field-head">
              <span class={'type-badge t-' + f.type} title={TYPE_LABELS[f.type] || f.type}>{TYPE_LABELS[f.type] || f.type}</span>
              <span class="field-name">{f.name}</span>
              {f.required && <span class="tag">required</span>}
            </div>
          </div>
        ))}
        {fields.length === 0 && <p class="muted">{query.trim() ? 'No fields yet: the query has to run.' : 'Type a query to see its fields.'}</p>}
      </div>
    </div>
  );
}
