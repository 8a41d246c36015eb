// The records screen's "Summary": records grouped by one field (select, text,
// email, bool, relation, or a date bucket), with the count and optionally the
// sum of a number field per group, from GET /api/collections/{c}/aggregate
// under the list's filter and search. Bars are plain CSS widths. A relation's
// groups are labelled with the related records' labels (one extra request).
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorBanner, Spinner } from '../ui';
import { recordLabel } from './Records';

const GROUPABLE = new Set(['select', 'text', 'email', 'url', 'bool', 'relation']);
const DATED = new Set(['date', 'autodate']);
const BUCKETS = ['year', 'month', 'day'];
/** Groups shown at most (the biggest, by count). */
const LIMIT = 50;

/** The `groupBy` choices for a collection: plain fields, then `date:bucket` entries. */
export function groupChoices(fields: any[]): string[] {
  // `id` is unique: one group per record says nothing.
  const plain = fields.filter((f) => GROUPABLE.has(f.type) && f.name !== 'id').map((f) => f.name);
  const dated = fields.filter((f) => DATED.has(f.type)).flatMap((f) => BUCKETS.map((b) => `${f.name}:${b}`));
  return [...plain, ...dated];
}

type Props = { collection: any; fields: any[]; filter: string; search: string; collections: any[] };

export function Summary({ collection, fields, filter, search, collections }: Props) {
  const choices = groupChoices(fields);
  const numbers = fields.filter((f) => f.type === 'number').map((f) => f.name);
  const [groupBy, setGroupBy] = useState(choices[0] || '');
  const [sumOf, setSumOf] = useState('');
  const [items, setItems] = useState<any[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [labels, setLabels] = useState<Record<string, string>>({});

  useEffect(() => {
    if (!groupBy) return;
    let stale = false;
    setItems(null);
    const aggregate = sumOf ? `count(),sum(${sumOf})` : 'count()';
    api('GET', `/api/collections/${collection.id}/aggregate`, undefined, { groupBy, aggregate, filter, search, sort: '-count', limit: LIMIT })
      .then((r) => { if (!stale) { setItems(r.items); setErr(null); } })
      .catch((e) => { if (!stale) { setItems([]); setErr(e); } });
    return () => { stale = true; };
  }, [collection.id, groupBy, sumOf, filter, search]);

  // Labels for a single relation's groups (ids stay shown when the lookup fails).
  useEffect(() => {
    setLabels({});
    const rel = fields.find((f) => f.name === groupBy && f.type === 'relation');
    const ids = (items || []).map((r) => r[groupBy]).filter((v) => typeof v === 'string' && v !== '');
    if (!rel || !ids.length) return;
    const target = collections.find((c) => c.id === rel.collectionId);
    let stale = false;
    const byId = ids.map((id) => `id='${id.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(' || ');
    api('GET', `/api/collections/${rel.collectionId}/records`, undefined, { filter: byId, perPage: ids.length, skipTotal: 1 })
      .then((r) => { if (!stale) setLabels(Object.fromEntries(r.items.map((x: any) => [x.id, recordLabel(x, target)]))); })
      .catch(() => {});
    return () => { stale = true; };
  }, [items]);
  const show = (v: any) => (typeof v === 'string' && labels[v] ? labels[v] : label(v));

  if (!choices.length) return <p class="muted small" data-testid="summary">No field to group by.</p>;
  const sumKey = `sum_${sumOf}`;
  const maxCount = Math.max(1, ...(items || []).map((r) => Number(r.count) || 0));
  const maxSum = Math.max(1e-9, ...(items || []).map((r) => Math.abs(Number(r[sumKey]) || 0)));
  return (
    <div class="summary" data-testid="summary">
      <div class="toolbar">
        <label class="small" for="summary-group">Group by</label>
        <select id="summary-group" value={groupBy} onChange={(e) => setGroupBy((e.target as HTMLSelectElement).value)}>
          {choices.map((c) => <option value={c}>{c}</option>)}
        </select>
        <label class="small" for="summary-sum">Sum of</label>
        <select id="summary-sum" value={sumOf} onChange={(e) => setSumOf((e.target as HTMLSelectElement).value)}>
          <option value="">(none)</option>
          {numbers.map((n) => <option value={n}>{n}</option>)}
        </select>
        {(filter || search) && <span class="muted small">of the records matching the {search ? 'search' : 'filter'}</span>}
      </div>
      {err && <ErrorBanner error={err} />}
      {!items && !err && <Spinner />}
      {items && !err && items.length === 0 && <p class="muted small">No records.</p>}
      {items && items.length > 0 && (
        <table class="summary-table">
          <thead><tr><th>{groupBy}</th><th>count</th>{sumOf && <th>sum of {sumOf}</th>}</tr></thead>
          <tbody>
            {items.map((r) => (
              <tr data-group={label(r[groupBy])}>
                <td class="summary-key" title={label(r[groupBy])}>{show(r[groupBy])}</td>
                <td class="summary-val" data-testid="summary-count">
                  <span class="summary-bar" style={{ width: `${(100 * (Number(r.count) || 0)) / maxCount}%` }} />
                  <span class="summary-num">{r.count}</span>
                </td>
                {sumOf && (
                  <td class="summary-val" data-testid="summary-sum">
                    <span class="summary-bar sum" style={{ width: `${(100 * Math.abs(Number(r[sumKey]) || 0)) / maxSum}%` }} />
                    <span class="summary-num">{r[sumKey] ?? 0}</span>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {items && items.length >= LIMIT && <p class="muted small">The {LIMIT} largest groups.</p>}
    </div>
  );
}

function label(v: any): string {
  if (v === null || v === undefined || v === '') return '(empty)';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
