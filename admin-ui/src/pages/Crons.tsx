// Cron jobs (GET /api/crons): the registered jobs with their expressions and
// a "Run now" button each (POST /api/crons/{id}), with per-job feedback.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorBanner, Spinner, toast } from '../ui';

const KNOWN: Record<string, string> = {
  __pbDBOptimize__: 'Optimizes the databases (PRAGMA optimize, WAL checkpoint).',
  __pbMFACleanup__: 'Deletes expired MFA sessions.',
  __pbOTPCleanup__: 'Deletes expired one-time passwords.',
  __pbLogsCleanup__: 'Deletes request logs older than the retention.',
  __pbAutoBackup__: 'Creates an automatic backup (schedule under Backups).',
};

type Result = { ok: boolean; text: string };

export function Crons() {
  const [jobs, setJobs] = useState<any[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [running, setRunning] = useState('');
  const [results, setResults] = useState<Record<string, Result>>({});
  const load = () => api('GET', '/api/crons').then((j) => { setJobs(j); setErr(null); }).catch(setErr);
  useEffect(() => { load(); }, []);

  const run = async (id: string) => {
    setRunning(id);
    let r: Result;
    try {
      await api('POST', `/api/crons/${encodeURIComponent(id)}`);
      r = { ok: true, text: `Ran at ${new Date().toISOString().slice(11, 19)} UTC` };
      toast(`${id} ran.`);
    } catch (e) {
      r = { ok: false, text: e instanceof Error ? e.message : String(e) };
    }
    setResults((x) => ({ ...x, [id]: r }));
    setRunning('');
  };

  return (
    <section class="page" aria-labelledby="crons-title">
      <div class="page-head">
        <h1 id="crons-title">Crons</h1>
        <div class="spacer" />
        <button type="button" class="btn ghost" onClick={load}>↻ Refresh</button>
      </div>
      {err && <ErrorBanner error={err} />}
      <div class="table-wrap">
        <table class="crons">
          <thead><tr><th>Job</th><th>Expression</th><th>Last run from here</th><th class="right">Action</th></tr></thead>
          <tbody>
            {!jobs && !err && <tr><td colSpan={4}><Spinner /></td></tr>}
            {jobs && jobs.length === 0 && <tr><td colSpan={4} class="empty">No cron jobs registered.</td></tr>}
            {jobs?.map((j) => {
              const r = results[j.id];
              return (
                <tr key={j.id} data-id={j.id}>
                  <td><span class="mono">{j.id}</span>{KNOWN[j.id] && <div class="hint">{KNOWN[j.id]}</div>}</td>
                  <td><code>{j.expression}</code></td>
                  <td class="result" role="status">{r && <span class={r.ok ? 'ok' : 'field-error'}>{r.ok ? '✓ ' : '✕ '}{r.text}</span>}</td>
                  <td class="right">
                    <button type="button" class="btn small run" disabled={running === j.id} onClick={() => run(j.id)} aria-label={`Run ${j.id} now`}>{running === j.id ? 'Running…' : '▶ Run now'}</button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}
