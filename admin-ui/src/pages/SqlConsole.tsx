// The SQL console (superusers): a query box run with the button or
// Ctrl+Enter through `POST /api/sql`, the result as a table, the run time and
// affected rows, and a failed query's error in the server's words. Every
// value is shown as text (Preact escapes it): a row holding markup is shown
// as the characters it contains, never rendered.
import { useState } from 'preact/hooks';
import { ApiError, api, fieldError } from '../api';
import { Row } from '../ui';

type Result = { execTime: number; affectedRows: number; columns: { name: string; type: string }[]; rows: (string | null)[][] };

const QUERY_KEY = 'fb_sql_query';

export function SqlConsole() {
  const [query, setQuery] = useState(() => sessionStorage.getItem(QUERY_KEY) || '');
  const [result, setResult] = useState<Result | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const run = async () => {
    if (busy) return;
    setBusy(true);
    setErr(null);
    sessionStorage.setItem(QUERY_KEY, query);
    try {
      setResult(await api<Result>('POST', '/api/sql', { query }));
    } catch (e) {
      setResult(null);
      setErr(e);
    } finally {
      setBusy(false);
    }
  };
  const queryErr = fieldError(err, 'query');

  return (
    <section class="page sql-console" aria-labelledby="sql-title">
      <div class="page-head">
        <h1 id="sql-title">SQL console</h1>
        <div class="spacer" />
        <span class="muted small">Runs as written on the live database. Writes cannot be undone.</span>
      </div>
      <form onSubmit={(e) => { e.preventDefault(); run(); }}>
        <Row label="Query" error={queryErr}>
          {(id) => (
            <textarea id={id} name="query" spellcheck={false} rows={6} value={query} placeholder="SELECT * FROM users LIMIT 10"
              onInput={(e) => setQuery((e.target as HTMLTextAreaElement).value)}
              onKeyDown={(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } }} />
          )}
        </Row>
        <div class="sql-meta">
          <button class="btn primary" disabled={busy || !query.trim()} data-testid="run-sql">{busy ? 'Running…' : 'Run'}</button>
          <span class="muted small">Ctrl+Enter runs the query.</span>
          <span class="spacer" />
          {result && <span class="small" data-testid="sql-stats">{result.execTime} ms · {result.affectedRows} affected row{result.affectedRows === 1 ? '' : 's'} · {result.rows.length} row{result.rows.length === 1 ? '' : 's'}</span>}
        </div>
      </form>
      {err && !queryErr && (
        <div class="banner error" role="alert" data-testid="sql-error">
          <pre class="sql-error-text">{err instanceof ApiError || err instanceof Error ? err.message : String(err)}</pre>
        </div>
      )}
      {result && result.columns.length > 0 && (
        <div class="table-wrap">
          <table class="sql-result" data-testid="sql-result">
            <thead><tr>{result.columns.map((c) => <th title={c.type || undefined}>{c.name}</th>)}</tr></thead>
            <tbody>
              {result.rows.map((row) => (
                <tr>{row.map((v) => (v === null ? <td class="null">NULL</td> : <td>{String(v)}</td>))}</tr>
              ))}
              {result.rows.length === 0 && <tr><td colSpan={result.columns.length} class="empty">No rows.</td></tr>}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
