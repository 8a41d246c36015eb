// The records of one collection: paginated table, sortable columns, a filter
// box in the filter language (server errors shown inline), a column chooser,
// bulk select and delete. A view collection's records are read-only: no
// New, no selection, no delete. A collection with searchable fields also gets
// a full-text search box (`search=`, ranked with `sort=@rank` unless a column
// sort was chosen), and every list a "Summary" of grouped counts and sums.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { go, href, rememberList } from '../router';
import { Check, ErrorBanner, Spinner, confirmDanger, toast } from '../ui';
import { Summary } from './Summary';

const NEVER_SHOWN = new Set(['password', 'tokenKey']);

export function visibleFields(collection: any) {
  return collection.fields.filter((f: any) => !NEVER_SHOWN.has(f.name) && f.type !== 'password');
}

export function Records({ collection, collections = [] }: { collection: any; collections?: any[] }) {
  const all = visibleFields(collection);
  const storeKey = `fb_cols_${collection.id}`;
  const [hidden, setHidden] = useState<string[]>(() => {
    try { return JSON.parse(localStorage.getItem(storeKey) || '[]'); } catch { return []; }
  });
  // Filter, sort and page live in the address (`#/c/posts?filter=…&sort=…`),
  // so a reload or a shared link shows the same list.
  const initial = new URLSearchParams(location.hash.split('?')[1] || '');
  const [filterText, setFilterText] = useState(initial.get('filter') || '');
  const [filter, setFilter] = useState(initial.get('filter') || '');
  const defaultSort = collection.fields.some((f: any) => f.name === 'created') ? '-created' : '';
  const [sort, setSort] = useState(initial.get('sort') ?? defaultSort);
  const searchable = collection.fields.some((f: any) => f.searchable);
  const [searchText, setSearchText] = useState(searchable ? initial.get('search') || '' : '');
  const [search, setSearch] = useState(searchable ? initial.get('search') || '' : '');
  const [showSummary, setShowSummary] = useState(false);
  const [page, setPage] = useState(Number(initial.get('page')) || 1);
  const [perPage, setPerPage] = useState(Number(initial.get('perPage')) || 20);
  useEffect(() => {
    // Only while this list is still the page: an effect that runs after a
    // navigation away (e.g. to `#/new`) must not pull the address back.
    const here = `#/c/${encodeURIComponent(collection.name)}`;
    if (location.hash !== here && !location.hash.startsWith(`${here}?`)) return;
    const q = new URLSearchParams();
    if (search) q.set('search', search);
    if (filter) q.set('filter', filter);
    q.set('sort', sort);
    if (page > 1) q.set('page', String(page));
    if (perPage !== 20) q.set('perPage', String(perPage));
    history.replaceState(null, '', `#/c/${encodeURIComponent(collection.name)}?${q}`);
    rememberList(collection.name, q.toString());
  }, [search, filter, sort, page, perPage]);
  const [data, setData] = useState<any>(null);
  // Search marks of the page's records: id → field → the server's `:highlight` HTML.
  const [marks, setMarks] = useState<Record<string, Record<string, string>>>({});
  const [err, setErr] = useState<unknown>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let stale = false;
    // Relations are expanded so the table can show the related records' labels.
    const expand = all.filter((f: any) => f.type === 'relation').map((f: any) => f.name).join(',');
    // `@rank` only means something with a search; without one it is a 400.
    const listSort = sort === '@rank' && !search ? defaultSort : sort;
    api('GET', `/api/collections/${collection.id}/records`, undefined, { page, perPage, sort: listSort, filter, search, expand })
      .then((d) => { if (!stale) { setData(d); setErr(null); } })
      .catch((e) => { if (!stale) setErr(e); });
    // The same page again with only the marked values of the plain-text
    // searchable columns (editor HTML stays unmarked); a failure only loses marks.
    const marked = all.filter((f: any) => f.searchable && MARKED_TYPES.includes(f.type)).map((f: any) => `${f.name}:highlight`);
    setMarks({});
    if (search && marked.length) {
      api('GET', `/api/collections/${collection.id}/records`, undefined, { page, perPage, sort: listSort, filter, search, skipTotal: 1, fields: ['id', ...marked].join(',') })
        .then((d: any) => { if (!stale) setMarks(Object.fromEntries((d.items || []).map((r: any) => [r.id, r]))); })
        .catch(() => {});
    }
    return () => { stale = true; };
  }, [collection.id, page, perPage, sort, filter, search, tick]);

  /** Applies the boxes; a new search ranks best first unless a column sort was chosen. */
  const apply = () => {
    const s = searchText.trim();
    setFilter(filterText.trim());
    setSearch(s);
    if (s && (sort === defaultSort || sort === '@rank')) setSort('@rank');
    if (!s && sort === '@rank') setSort(defaultSort);
    setPage(1);
  };
  const clear = () => {
    setFilter(''); setFilterText(''); setSearch(''); setSearchText('');
    if (sort === '@rank') setSort(defaultSort);
    setPage(1);
  };

  const isView = collection.type === 'view';
  const cols = all.filter((f: any) => !hidden.includes(f.name));
  const toggleCol = (name: string, on: boolean) => {
    const next = on ? hidden.filter((h) => h !== name) : [...hidden, name];
    setHidden(next);
    localStorage.setItem(storeKey, JSON.stringify(next));
  };
  const sortBy = (name: string) => { setSort(sort === name ? `-${name}` : name); setPage(1); };
  const items: any[] = data?.items || [];
  const allOnPage = items.length > 0 && items.every((r) => selected.has(r.id));
  const toggleAll = () => setSelected(allOnPage ? new Set() : new Set(items.map((r) => r.id)));
  const toggle = (id: string) => { const s = new Set(selected); s.has(id) ? s.delete(id) : s.add(id); setSelected(s); };
  const bulkDelete = async () => {
    const ids = [...selected];
    if (!(await confirmDanger(`Delete ${ids.length} record${ids.length > 1 ? 's' : ''}? This cannot be undone.`))) return;
    const results = await Promise.allSettled(ids.map((id) => api('DELETE', `/api/collections/${collection.id}/records/${id}`)));
    const failed = results.filter((r) => r.status === 'rejected');
    toast(`Deleted ${ids.length - failed.length} record(s)${failed.length ? `, ${failed.length} failed` : ''}.`);
    if (failed.length) setErr((failed[0] as PromiseRejectedResult).reason);
    setSelected(new Set());
    setTick(tick + 1);
  };

  return (
    <section class="page" aria-labelledby="records-title">
      <div class="page-head">
        <h1 id="records-title">{collection.name} {collection.type === 'auth' && <span class="tag">auth</span>} {collection.system && <span class="tag">system</span>}</h1>
        <a class="btn ghost small" href={href(`c/${collection.name}/edit`)}>⚙ Edit collection</a>
        <a class="btn ghost small" href={href(`c/${collection.name}/api`)}>{'</>'} API preview</a>
        <div class="spacer" />
        {!isView && <a class="btn primary" href={href(`c/${collection.name}/r/new`)}>+ New record</a>}
      </div>
      <form class="toolbar" role="search" onSubmit={(e) => { e.preventDefault(); apply(); }}>
        {searchable && (
          <>
            <label class="sr-only" for="search">Full-text search</label>
            <input id="search" name="search" type="search" class={'search' + (err && search ? ' invalid' : '')} placeholder="Full-text search…" title="Words are ANDed; &quot;phrases&quot;, prefix*, -exclude. Best matches first." value={searchText} onInput={(e) => setSearchText((e.target as HTMLInputElement).value)} />
          </>
        )}
        <label class="sr-only" for="filter">Filter</label>
        <input id="filter" name="filter" class={'filter' + (err && filter ? ' invalid' : '')} placeholder={`Filter, e.g. ${cols[1]?.name || 'id'} != '' && created > '2024-01-01'`} value={filterText} spellcheck={false} onInput={(e) => setFilterText((e.target as HTMLInputElement).value)} />
        <button class="btn">Apply</button>
        {(filter || search) && <button type="button" class="btn ghost" onClick={clear}>Clear</button>}
        <button type="button" class={'btn ghost' + (showSummary ? ' on' : '')} aria-pressed={showSummary} onClick={() => setShowSummary(!showSummary)}>Summary</button>
        <details class="col-chooser">
          <summary class="btn ghost">Columns</summary>
          <div class="popover">
            {all.map((f: any) => <Check label={f.name} checked={!hidden.includes(f.name)} onChange={(on) => toggleCol(f.name, on)} />)}
          </div>
        </details>
      </form>
      {err && <div class="inline-error" role="alert" data-testid="list-error"><ErrorBanner error={err} /></div>}
      {showSummary && <Summary collection={collection} fields={all} filter={filter} search={search} collections={collections} />}
      {search && sort === '@rank' && <p class="muted small" data-testid="search-ranked">Full-text search: best matches first.</p>}
      {isView && <p class="muted small" data-testid="view-readonly">View collection: records come from its query and are read-only.</p>}
      {!isView && selected.size > 0 && (
        <div class="bulkbar">
          <span>{selected.size} selected</span>
          <button type="button" class="btn danger small" onClick={bulkDelete}>Delete selected</button>
          <button type="button" class="btn ghost small" onClick={() => setSelected(new Set())}>Clear selection</button>
        </div>
      )}
      <div class="table-wrap">
        <table class="records">
          <thead>
            <tr>
              {!isView && <th class="sel"><input type="checkbox" aria-label="Select all on this page" checked={allOnPage} onChange={toggleAll} /></th>}
              {cols.map((f: any) => (
                <th aria-sort={sort === f.name ? 'ascending' : sort === `-${f.name}` ? 'descending' : undefined}>
                  <button type="button" class="th-btn" onClick={() => sortBy(f.name)}>
                    {f.name}
                    <span class="sort-ind" aria-hidden="true">{sort === f.name ? '▲' : sort === `-${f.name}` ? '▼' : ''}</span>
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {!data && !err && <tr><td colSpan={cols.length + (isView ? 0 : 1)}><Spinner /></td></tr>}
            {data && items.length === 0 && <tr><td colSpan={cols.length + (isView ? 0 : 1)} class="empty">No records{search ? ' match the search' : filter ? ' match the filter' : ' yet'}.</td></tr>}
            {items.map((r) => (
              <tr key={r.id} class={selected.has(r.id) ? 'selected' : ''} onClick={(e) => { if ((e.target as HTMLElement).closest('input,a,button')) return; go(`c/${collection.name}/r/${r.id}`); }}>
                {!isView && <td class="sel"><input type="checkbox" aria-label={`Select ${r.id}`} checked={selected.has(r.id)} onChange={() => toggle(r.id)} /></td>}
                {cols.map((f: any, i: number) => (
                  <td data-col={f.name}>
                    {i === 0 ? <a href={href(`c/${collection.name}/r/${r.id}`)}>{cell(f, r[f.name], r, collections, marks[r.id]?.[f.name])}</a> : cell(f, r[f.name], r, collections, marks[r.id]?.[f.name])}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {data && (
        <nav class="pager" aria-label="Pagination">
          <span class="muted">{data.totalItems} record{data.totalItems === 1 ? '' : 's'}</span>
          <div class="spacer" />
          <label class="small muted" for="perpage">Per page</label>
          <select id="perpage" value={perPage} onChange={(e) => { setPerPage(Number((e.target as HTMLSelectElement).value)); setPage(1); }}>
            {[10, 20, 50, 100].map((n) => <option value={n}>{n}</option>)}
          </select>
          <button type="button" class="btn small" disabled={page <= 1} onClick={() => setPage(page - 1)}>‹ Prev</button>
          <span class="small">Page {data.page} of {Math.max(1, data.totalPages)}</span>
          <button type="button" class="btn small" disabled={page >= data.totalPages} onClick={() => setPage(page + 1)}>Next ›</button>
        </nav>
      )}
    </section>
  );
}

/** A short human label for a record: its presentable field, else a text field, else its id. */
export function recordLabel(rec: any, target?: any): string {
  if (!rec) return '';
  const fields: any[] = target?.fields || [];
  const presentable = fields.filter((f) => f.presentable).map((f) => f.name);
  const textual = fields.filter((f) => ['text', 'email'].includes(f.type) && f.name !== 'id' && !f.hidden).map((f) => f.name);
  for (const k of [...presentable, ...textual, 'name', 'title', 'email']) {
    const v = rec[k];
    if (v !== undefined && v !== null && v !== '') return Array.isArray(v) ? v.join(', ') : String(v);
  }
  return rec.id;
}

/** Field types whose search matches the list marks (plain text values). */
const MARKED_TYPES = ['text', 'email', 'url'];

/** The server's `:highlight` HTML as pieces of plain text, each marked or not. */
function markedPieces(html: string): { text: string; mark: boolean }[] {
  const unescape = (t: string) => t.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  const out: { text: string; mark: boolean }[] = [];
  let mark = false;
  for (const piece of html.split(/(<mark>|<\/mark>)/)) {
    if (piece === '<mark>') mark = true;
    else if (piece === '</mark>') mark = false;
    else if (piece) out.push({ text: unescape(piece), mark });
  }
  return out;
}

/**
 * A marked value as text and `<mark>` elements, at most `max` characters,
 * starting a little before the first match so it is in view. Never parsed as
 * HTML: the only tags honoured are the literal `<mark>`/`</mark>` the server
 * adds; the text between them (which the server escaped) is unescaped and
 * rendered as text, so markup stored in a record shows as characters.
 */
export function markedText(html: string, max: number, lead = 12) {
  const pieces = markedPieces(html);
  const first = pieces.findIndex((p) => p.mark);
  const before = pieces.slice(0, Math.max(0, first)).reduce((n, p) => n + p.text.length, 0);
  let skip = before > lead * 2 ? before - lead : 0;
  const out: any[] = skip ? ['…'] : [];
  let left = max - out.length;
  for (const { text: whole, mark } of pieces) {
    let text = whole;
    if (skip) { const cut = Math.min(skip, text.length); text = text.slice(cut); skip -= cut; }
    if (left <= 0 || !text) continue;
    if (text.length > left) text = text.slice(0, Math.max(0, left - 1)) + '…';
    left -= text.length;
    out.push(mark ? <mark>{text}</mark> : text);
  }
  return out;
}

function cell(f: any, v: any, r?: any, collections: any[] = [], marked?: string) {
  if (typeof marked === 'string' && marked.includes('<mark>')) return <span class="trunc" data-marked="" title={String(v ?? '')}>{markedText(marked, 60)}</span>;
  if (f.type === 'relation' && r?.expand?.[f.name]) {
    const ex = r.expand[f.name];
    const list = Array.isArray(ex) ? ex : [ex];
    const target = collections.find((c) => c.id === f.collectionId);
    return <span class="trunc" title={list.map((x: any) => x.id).join(', ')}>{truncate(list.map((x: any) => recordLabel(x, target)).join(', '), 60)}</span>;
  }
  if (f.type === 'bool' || f.name === 'verified') return v ? <span class="yes">✓ {f.name === 'verified' ? 'verified' : 'true'}</span> : <span class="muted">{f.name === 'verified' ? 'unverified' : 'false'}</span>;
  if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) return <span class="muted">—</span>;
  if (f.type === 'json' || f.type === 'geoPoint') return <code class="trunc">{truncate(JSON.stringify(v), 60)}</code>;
  if (Array.isArray(v)) return <span class="trunc">{truncate(v.join(', '), 60)}</span>;
  if (f.type === 'editor') return <span class="trunc">{truncate(String(v).replace(/<[^>]*>/g, ' '), 60)}</span>;
  return <span class="trunc">{truncate(String(v), 60)}</span>;
}

function truncate(s: string, n: number) {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}
