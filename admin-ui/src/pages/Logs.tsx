// Request logs (GET /api/logs): a requests-per-hour chart from /api/logs/stats
// and a paginated table, both narrowed by the same filter (filter language on
// id, created, level, message, data.*; server errors shown inline), a detail
// dialog for one entry (`#/logs/ID`) and "clear logs".
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { go, href } from '../router';
import { ErrorBanner, Spinner, confirmDanger, toast } from '../ui';

const ERROR_LEVEL = 8;

export function Logs({ id }: { id?: string }) {
  const initial = new URLSearchParams(location.hash.split('?')[1] || '');
  const [filterText, setFilterText] = useState(initial.get('filter') || '');
  const [filter, setFilter] = useState(initial.get('filter') || '');
  const [page, setPage] = useState(Number(initial.get('page')) || 1);
  const [perPage, setPerPage] = useState(Number(initial.get('perPage')) || 20);
  const query = () => {
    const q = new URLSearchParams();
    if (filter) q.set('filter', filter);
    if (page > 1) q.set('page', String(page));
    if (perPage !== 20) q.set('perPage', String(perPage));
    const s = q.toString();
    return s ? `?${s}` : '';
  };
  useEffect(() => {
    history.replaceState(null, '', `#/logs${id ? '/' + encodeURIComponent(id) : ''}${query()}`);
  }, [filter, page, perPage]);
  const [data, setData] = useState<any>(null);
  const [stats, setStats] = useState<any[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let stale = false;
    Promise.all([
      api('GET', '/api/logs', undefined, { page, perPage, sort: '-created', filter }),
      api('GET', '/api/logs/stats', undefined, { filter }),
    ])
      .then(([d, s]) => { if (!stale) { setData(d); setStats(s); setErr(null); } })
      .catch((e) => { if (!stale) setErr(e); });
    return () => { stale = true; };
  }, [page, perPage, filter, tick]);

  const clear = async () => {
    if (!(await confirmDanger('Delete all request logs? This cannot be undone.', 'Clear logs'))) return;
    try {
      await api('DELETE', '/api/logs');
      toast('Logs cleared.');
      setPage(1);
      setTick(tick + 1);
    } catch (e) {
      setErr(e);
    }
  };
  const items: any[] = data?.items || [];
  const open = (logId: string) => go(`logs/${encodeURIComponent(logId)}${query()}`);

  return (
    <section class="page" aria-labelledby="logs-title">
      <div class="page-head">
        <h1 id="logs-title">Logs</h1>
        <div class="spacer" />
        <button type="button" class="btn ghost" onClick={() => setTick(tick + 1)}>↻ Refresh</button>
        <button type="button" class="btn danger-outline" onClick={clear}>Clear logs</button>
      </div>
      <form class="toolbar" role="search" onSubmit={(e) => { e.preventDefault(); setFilter(filterText.trim()); setPage(1); }}>
        <label class="sr-only" for="logs-filter">Filter</label>
        <input id="logs-filter" name="filter" class={'filter' + (err && filter ? ' invalid' : '')} placeholder="Filter, e.g. data.status >= 400 && data.method = 'POST'" value={filterText} spellcheck={false} onInput={(e) => setFilterText((e.target as HTMLInputElement).value)} />
        <button class="btn">Apply</button>
        {filter && <button type="button" class="btn ghost" onClick={() => { setFilter(''); setFilterText(''); setPage(1); }}>Clear</button>}
      </form>
      {err && <div class="inline-error" role="alert" data-testid="list-error"><ErrorBanner error={err} /></div>}
      <Chart stats={stats} />
      <div class="table-wrap">
        <table class="records logs">
          <thead>
            <tr><th>Time (UTC)</th><th>Method</th><th>URL</th><th>Status</th><th>Exec time</th><th>Auth</th></tr>
          </thead>
          <tbody>
            {!data && !err && <tr><td colSpan={6}><Spinner /></td></tr>}
            {data && items.length === 0 && <tr><td colSpan={6} class="empty">No logs{filter ? ' match the filter' : ' yet'}.</td></tr>}
            {items.map((l) => {
              const d = l.data || {};
              const bad = l.level >= ERROR_LEVEL;
              return (
                <tr key={l.id} class={bad ? 'level-error' : ''} data-level={l.level} onClick={(e) => { if (!(e.target as HTMLElement).closest('a')) open(l.id); }}>
                  <td><a href={href(`logs/${encodeURIComponent(l.id)}${query()}`)} title={l.created}>{shortDate(l.created)}</a></td>
                  <td>{d.method ? <span class={`method m-${d.method}`}>{d.method}</span> : <span class="muted">—</span>}</td>
                  <td><span class="trunc mono" title={d.url}>{d.url || l.message}</span></td>
                  <td><Status status={d.status} bad={bad} /></td>
                  <td class="num">{d.execTime !== undefined ? `${fmtMs(d.execTime)}` : ''}</td>
                  <td>{d.auth ? <span class="tag">{d.auth}</span> : <span class="muted">guest</span>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {data && (
        <nav class="pager" aria-label="Pagination">
          <span class="muted">{data.totalItems} entr{data.totalItems === 1 ? 'y' : 'ies'}</span>
          <div class="spacer" />
          <label class="small muted" for="perpage">Per page</label>
          <select id="perpage" value={perPage} onChange={(e) => { setPerPage(Number((e.target as HTMLSelectElement).value)); setPage(1); }}>
            {[20, 50, 100, 200].map((n) => <option value={n}>{n}</option>)}
          </select>
          <button type="button" class="btn small" disabled={page <= 1} onClick={() => setPage(page - 1)}>‹ Prev</button>
          <span class="small">Page {data.page} of {Math.max(1, data.totalPages)}</span>
          <button type="button" class="btn small" disabled={page >= data.totalPages} onClick={() => setPage(page + 1)}>Next ›</button>
        </nav>
      )}
      {id && <LogDetail id={id} onClose={() => go(`logs${query()}`)} />}
    </section>
  );
}

function Status({ status, bad }: { status?: number; bad?: boolean }) {
  if (status === undefined) return <span class="muted">—</span>;
  return <span class={'status ' + (bad || status >= 400 ? 'bad' : 'good')}>{status}</span>;
}

function shortDate(s: string) {
  return (s || '').slice(0, 19);
}

function fmtMs(ms: number) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms * 100) / 100} ms`;
}

// ---- requests per hour ----------------------------------------------------

const HOUR = 3600_000;
const MAX_BARS = 72;
const W = 720;
const H = 120;

/** Plain SVG bars, one per hour from the first to the last bucket (at most the last 72 hours shown). */
function Chart({ stats }: { stats: any[] | null }) {
  const buckets = (stats || []).map((b) => ({ t: Date.parse(b.date.replace(' ', 'T')), total: b.total as number })).filter((b) => !isNaN(b.t));
  let bars: { t: number; total: number }[] = [];
  if (buckets.length) {
    const last = Math.max(...buckets.map((b) => b.t));
    const first = Math.max(Math.min(...buckets.map((b) => b.t)), last - (MAX_BARS - 1) * HOUR);
    const by = new Map(buckets.map((b) => [b.t, b.total]));
    for (let t = first; t <= last; t += HOUR) bars.push({ t, total: by.get(t) || 0 });
  }
  const max = Math.max(1, ...bars.map((b) => b.total));
  const sum = bars.reduce((a, b) => a + b.total, 0);
  const slot = W / Math.max(bars.length, 12);
  const label = (t: number) => new Date(t).toISOString().slice(5, 13).replace('T', ' ') + ':00';
  return (
    <figure class="card chart" aria-labelledby="chart-title">
      <figcaption id="chart-title" class="chart-head">
        <strong>Requests per hour</strong>
        <span class="muted small">{stats ? `${sum} request${sum === 1 ? '' : 's'}${bars.length ? `, peak ${max}/h` : ''}` : ''}</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={`Requests per hour: ${bars.map((b) => `${label(b.t)} ${b.total}`).join(', ') || 'none'}`}>
        <line x1="0" x2={W} y1={H} y2={H} class="axis" />
        {bars.map((b, i) => {
          const h = b.total ? Math.max(2, (b.total / max) * (H - 4)) : 0;
          return (
            <rect class="bar" x={i * slot + slot * 0.15} width={slot * 0.7} y={H - h} height={h}>
              <title>{`${label(b.t)} UTC: ${b.total}`}</title>
            </rect>
          );
        })}
      </svg>
      <div class="chart-ticks muted small" aria-hidden="true">
        <span>{bars.length ? label(bars[0].t) : '\u00a0'}</span>
        <span>{bars.length > 1 ? label(bars[bars.length - 1].t) : ''}</span>
      </div>
      {stats && bars.length === 0 && <p class="chart-empty muted small">No requests in range.</p>}
    </figure>
  );
}

// ---- one entry ----------------------------------------------------------

const DATA_ORDER = ['method', 'url', 'status', 'execTime', 'auth', 'remoteIP', 'userIP', 'referer', 'userAgent', 'type', 'error', 'details'];

function LogDetail({ id, onClose }: { id: string; onClose: () => void }) {
  const [log, setLog] = useState<any>(null);
  const [err, setErr] = useState<unknown>(null);
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    setLog(null);
    setErr(null);
    api('GET', `/api/logs/${encodeURIComponent(id)}`).then(setLog).catch(setErr);
  }, [id]);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  const data = log?.data || {};
  const keys = [...DATA_ORDER.filter((k) => k in data), ...Object.keys(data).filter((k) => !DATA_ORDER.includes(k)).sort()];
  return (
    <dialog ref={ref} class="drawer" aria-labelledby="log-title" onCancel={(e) => { e.preventDefault(); onClose(); }}>
      <div class="page-head">
        <h2 id="log-title">Log entry</h2>
        <div class="spacer" />
        <button type="button" class="btn ghost small" onClick={onClose}>✕ Close</button>
      </div>
      {err && <ErrorBanner error={err} />}
      {!log && !err && <Spinner />}
      {log && (
        <dl class="kv" data-testid="log-detail">
          <dt>id</dt><dd class="mono">{log.id}</dd>
          <dt>created</dt><dd class="mono">{log.created}</dd>
          <dt>level</dt><dd>{log.level >= ERROR_LEVEL ? <span class="status bad">{log.level} error</span> : <span>{log.level} {log.level === 0 ? 'info' : ''}</span>}</dd>
          <dt>message</dt><dd class="mono">{log.message}</dd>
          {keys.map((k) => (
            <>
              <dt class={k === 'error' || k === 'details' ? 'hl' : ''}>data.{k}</dt>
              <dd class={'mono' + (k === 'error' || k === 'details' ? ' hl' : '')} data-key={k}>{value(data[k])}</dd>
            </>
          ))}
        </dl>
      )}
    </dialog>
  );
}

function value(v: any) {
  if (v === null || v === undefined || v === '') return <span class="muted">—</span>;
  if (typeof v === 'object') return <pre>{JSON.stringify(v, null, 2)}</pre>;
  return String(v);
}
