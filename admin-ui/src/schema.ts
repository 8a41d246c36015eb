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
