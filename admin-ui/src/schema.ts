// Field types and the options each carries (PocketBase 0.23+ field JSON).

export const FIELD_TYPES = [
  'text', 'editor', 'number', 'bool', 'email', 'url', 'date', 'autodate',
  'select', 'file', 'relation', 'json', 'password', 'geoPoint',
] as const;

export const TYPE_LABELS: Record<string, string> = {
  text: 'Plain text', editor: 'Rich editor', number: 'Number', bool: 'Bool', email: 'Email',
  url: 'URL', date: 'DateTime', autodate: 'Autodate', select: 'Select', file: 'File',
  relation: 'Relation', json: 'JSON', password: 'Password', geoPoint: 'Geo point',
};

export function newField(type: string, name: string, collections: any[]): any {
  const base: any = { name, type, required: false, hidden: false, presentable: false, system: false };
  switch (type) {
    case 'text': return { ...base, min: 0, max: 0, pattern: '', autogeneratePattern: '', primaryKey: false };
    case 'editor': return { ...base, maxSize: 0, convertURLs: false };
    case 'number': return { ...base, min: null, max: null, onlyInt: false };
    case 'email': case 'url': return { ...base, exceptDomains: [], onlyDomains: [] };
    case 'date': return { ...base, min: '', max: '' };
    case 'autodate': { const { required, ...rest } = base; void required; return { ...rest, onCreate: true, onUpdate: false }; }
    case 'select': return { ...base, values: [], maxSelect: 1 };
    case 'file': return { ...base, maxSelect: 1, maxSize: 0, mimeTypes: [], thumbs: [], protected: false };
    case 'relation': {
      const target = collections.find((c) => !c.system) || collections[0];
      return { ...base, collectionId: target?.id || '', cascadeDelete: false, minSelect: 0, maxSelect: 1 };
    }
    case 'json': return { ...base, maxSize: 0 };
    case 'password': return { ...base, min: 0, max: 0, pattern: '', cost: 0 };
    default: return base;
  }
}

export const RULES: [string, string][] = [
  ['listRule', 'List/Search'],
  ['viewRule', 'View'],
  ['createRule', 'Create'],
  ['updateRule', 'Update'],
  ['deleteRule', 'Delete'],
];

export const AUTH_RULES: [string, string][] = [
  ['authRule', 'Authentication'],
  ['manageRule', 'Manage'],
];

/** Is a record field value multi-valued (array) for this field? */
export function isMulti(f: any) {
  return ['select', 'file', 'relation'].includes(f.type) && (f.maxSelect || 1) > 1;
}

const STRING_LITERAL = /('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")/;

/** Renames a field in a rule expression (outside string literals), as
 *  PocketBase's UI does on save: `old`, `old.x`, `old:isset`, `@request.body.old`. */
export function renameInRule(rule: string, from: string, to: string): string {
  const esc = from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const root = new RegExp(`(?<![\\w.@])${esc}(?![\\w])`, 'g');
  const body = new RegExp(`(?<=@request\\.body\\.)${esc}(?![\\w])`, 'g');
  return rule
    .split(STRING_LITERAL)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(root, to).replace(body, to)))
    .join('');
}

/** Renames a column in an index statement (quoted or bare identifiers). */
export function renameInIndex(sql: string, from: string, to: string): string {
  const esc = from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return sql.replace(new RegExp('([`"\\[]?)(?<![\\w])' + esc + '(?![\\w])([`"\\]]?)', 'g'), (m, a, b, offset, whole) => {
    // Leave the ON `table` part alone: only rename inside the column list.
    const open = whole.indexOf('(');
    return open >= 0 && offset > open ? `${a}${to}${b}` : m;
  });
}

/** Applies field renames (matched by field id against `saved`) to rules and indexes. */
export function followRenames(draft: any, saved: any | undefined, ruleKeys: string[]): any {
  if (!saved) return draft;
  const before = new Map<string, string>(saved.fields.map((f: any) => [f.id, f.name]));
  const renames: [string, string][] = [];
  for (const f of draft.fields) {
    const old = f.id && before.get(f.id);
    if (old && old !== f.name && f.name) renames.push([old, f.name]);
  }
  if (!renames.length) return draft;
  const out = { ...draft };
  for (const k of ruleKeys) {
    if (typeof out[k] !== 'string' || !out[k]) continue;
    // Two passes through placeholders so swapped names (a↔b) rename correctly.
    let rule = out[k];
    renames.forEach(([from], i) => (rule = renameInRule(rule, from, `__fb_rename_${i}__`)));
    renames.forEach(([, to], i) => (rule = renameInRule(rule, `__fb_rename_${i}__`, to)));
    out[k] = rule;
  }
  out.indexes = (out.indexes || []).map((ix: string) => {
    renames.forEach(([from], i) => (ix = renameInIndex(ix, from, `__fb_rename_${i}__`)));
    renames.forEach(([, to], i) => (ix = renameInIndex(ix, `__fb_rename_${i}__`, to)));
    return ix;
  });
  return out;
}
