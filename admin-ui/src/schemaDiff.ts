// Collections import helpers: checking pasted JSON, and the diff the Review
// step shows between the current schema and an import, following what
// `PUT /api/collections/import` will do with it (entries matched by id, or by
// name without one; keys an entry leaves out keep their values; with
// deleteMissing, left-out non-system collections and left-out fields of a
// matched collection are dropped).

export const RULE_KEYS = ['listRule', 'viewRule', 'createRule', 'updateRule', 'deleteRule', 'authRule', 'manageRule'];

/** Keys that never count as a change (the server sets them). */
const IGNORED_KEYS = new Set(['created', 'updated']);

/** A copy of a collection as exported/imported: no timestamps, no OAuth2 provider list (as PocketBase's panel). */
export function exportable(c: any): any {
  const copy = JSON.parse(JSON.stringify(c));
  delete copy.created;
  delete copy.updated;
  if (copy.oauth2 && typeof copy.oauth2 === 'object') delete copy.oauth2.providers;
  return copy;
}

/** Auth, then base, then view collections; by name within each, system (`_`) ones last. As PocketBase exports. */
export function sortedByType(list: any[]): any[] {
  const rank = (c: any) => (c.type === 'auth' ? 0 : c.type === 'base' ? 1 : 2);
  return [...list].sort((a, b) => {
    if (rank(a) !== rank(b)) return rank(a) - rank(b);
    const ua = String(a.name).startsWith('_');
    const ub = String(b.name).startsWith('_');
    if (ua !== ub) return ua ? 1 : -1;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

export type Parsed = { ok: true; collections: any[] } | { ok: false; error: string };

/** Checks that `raw` is a JSON array of collection objects, each with a name. */
export function parseImport(raw: string): Parsed {
  if (!raw.trim()) return { ok: false, error: 'Paste a collections configuration or load a JSON file.' };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    return { ok: false, error: `Invalid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (!Array.isArray(value)) return { ok: false, error: 'Invalid collections configuration: expected a JSON array of collection objects.' };
  if (value.length === 0) return { ok: false, error: 'Invalid collections configuration: the array is empty.' };
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (!c || typeof c !== 'object' || Array.isArray(c)) return { ok: false, error: `Invalid collections configuration: item ${i + 1} is not a collection object.` };
    if (typeof c.name !== 'string' || !c.name) return { ok: false, error: `Invalid collections configuration: item ${i + 1} has no "name".` };
    if ('fields' in c && !Array.isArray(c.fields)) return { ok: false, error: `Invalid collections configuration: "fields" of "${c.name}" is not an array.` };
  }
  return { ok: true, collections: value.map((c) => { const copy = { ...c }; delete copy.created; delete copy.updated; return copy; }) };
}

export type ValueChange = { key: string; from: any; to: any };
export type FieldChange = { name: string; changes: ValueChange[] };
export type CollectionChange = {
  old: any;
  new: any;
  addedFields: any[];
  removedFields: any[];
  changedFields: FieldChange[];
  ruleChanges: ValueChange[];
  /** Other top-level keys that differ (name, type, indexes, options). */
  otherChanges: ValueChange[];
};
export type ImportDiff = { added: any[]; changed: CollectionChange[]; deleted: any[] };

const same = (a: any, b: any) => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

/** Key order does not make a difference. */
function canonical(v: any): any {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  return v;
}

function match(list: any[], item: any): any {
  if (item.id) return list.find((c) => c.id === item.id);
  return list.find((c) => String(c.name).toLowerCase() === String(item.name).toLowerCase());
}

/** The keys of `next` that differ from `prev` (keys `next` leaves out keep their values). */
function changedKeys(prev: any, next: any, skip: Set<string>): ValueChange[] {
  const out: ValueChange[] = [];
  for (const key of Object.keys(next)) {
    if (skip.has(key) || IGNORED_KEYS.has(key)) continue;
    if (!same(prev?.[key], next[key])) out.push({ key, from: prev?.[key], to: next[key] });
  }
  return out;
}

function fieldsDiff(oldFields: any[], newFields: any[], deleteMissing: boolean) {
  const addedFields: any[] = [];
  const changedFields: FieldChange[] = [];
  const matched = new Set<any>();
  for (const f of newFields) {
    const prev = match(oldFields, f);
    if (!prev) {
      addedFields.push(f);
      continue;
    }
    matched.add(prev);
    const changes = changedKeys(prev, f, new Set(['id']));
    if (changes.length) changedFields.push({ name: prev.name === f.name ? f.name : `${prev.name} → ${f.name}`, changes });
  }
  const removedFields = deleteMissing ? oldFields.filter((f) => !matched.has(f)) : [];
  return { addedFields, removedFields, changedFields };
}

/** What importing `next` over `current` adds, changes and deletes. */
export function diffImport(current: any[], next: any[], deleteMissing: boolean): ImportDiff {
  const added: any[] = [];
  const changed: CollectionChange[] = [];
  const matched = new Set<any>();
  for (const n of next) {
    const old = match(current, n);
    if (!old) {
      added.push(n);
      continue;
    }
    matched.add(old);
    const oldFields = Array.isArray(old.fields) ? old.fields : [];
    const fd = Array.isArray(n.fields) ? fieldsDiff(oldFields, n.fields, deleteMissing) : { addedFields: [], removedFields: [], changedFields: [] };
    const ruleChanges = changedKeys(old, n, new Set(Object.keys(n).filter((k) => !RULE_KEYS.includes(k))));
    const otherChanges = changedKeys(old, n, new Set(['id', 'fields', ...RULE_KEYS]));
    const c: CollectionChange = { old, new: n, ...fd, ruleChanges, otherChanges };
    if (c.addedFields.length || c.removedFields.length || c.changedFields.length || ruleChanges.length || otherChanges.length) changed.push(c);
  }
  // The server never deletes system collections.
  const deleted = deleteMissing ? current.filter((c) => !matched.has(c) && !c.system) : [];
  return { added, changed, deleted };
}

/** A short text for a value in the diff; for a rule, what null and "" mean. */
export function show(v: any, rule = false): string {
  if (v === undefined) return '(unset)';
  if (rule && v === null) return 'null (superusers only)';
  if (rule && v === '') return '"" (everyone)';
  return JSON.stringify(v);
}
