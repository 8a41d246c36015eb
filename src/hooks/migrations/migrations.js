// The JavaScript API of pb_migrations files (PocketBase's JSVM names and
// shapes for what its dashboard generates): migrate(up, down), Collection,
// Field and the typed field classes, unmarshal, Record, and the `app` the up
// and down functions receive. Everything that touches the database goes
// through one host function, captured here and removed from the globals;
// every call runs inside the migration's one transaction.
(function (G) {
  "use strict";
  const host = G.__host;
  delete G.__host;

  function call(op, args) {
    const reply = JSON.parse(host(op, JSON.stringify(args === undefined ? null : args)));
    if (reply.err !== undefined) throw new Error(reply.err);
    return reply.ok;
  }
  const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

  // ---- fields ------------------------------------------------------------------
  class Field {
    constructor(data) { Object.assign(this, clone(data || {})); }
  }
  G.Field = Field;
  const typed = {
    TextField: "text", NumberField: "number", BoolField: "bool", EmailField: "email", URLField: "url",
    EditorField: "editor", DateField: "date", AutodateField: "autodate", SelectField: "select",
    FileField: "file", RelationField: "relation", JSONField: "json", PasswordField: "password",
    GeoPointField: "geoPoint",
  };
  for (const [name, type] of Object.entries(typed)) {
    G[name] = class extends Field {
      constructor(data) { super(data); this.type = type; }
    };
  }
  const plain = (f) => (f && typeof f === "object" ? clone(f) : {});

  class FieldsList {
    constructor(items) { Object.defineProperty(this, "__items", { value: (items || []).map(plain), writable: true }); }
    get length() { return this.__items.length; }
    __prepare(f) {
      const field = plain(f);
      if (!field.id && field.name) {
        const same = this.__items.find((o) => o.name === field.name);
        if (same) field.id = same.id;
      }
      return field;
    }
    __indexOf(field) { return field.id ? this.__items.findIndex((o) => o.id === field.id) : -1; }
    add(...fields) {
      for (const f of fields) {
        const field = this.__prepare(f);
        const at = this.__indexOf(field);
        if (at >= 0) this.__items[at] = field;
        else this.__items.push(field);
      }
    }
    addAt(pos, ...fields) {
      let at = Math.max(0, Math.trunc(Number(pos) || 0));
      for (const f of fields) {
        const field = this.__prepare(f);
        const old = this.__indexOf(field);
        if (old >= 0) this.__items.splice(old, 1);
        at = Math.min(at, this.__items.length);
        this.__items.splice(at, 0, field);
        at++;
      }
    }
    removeById(id) { this.__items = this.__items.filter((o) => o.id !== String(id)); }
    removeByName(name) { this.__items = this.__items.filter((o) => o.name !== String(name)); }
    getById(id) { return this.__items.find((o) => o.id === String(id)) || null; }
    getByName(name) { return this.__items.find((o) => o.name === String(name)) || null; }
    fieldNames() { return this.__items.map((o) => o.name); }
    asMap() { return Object.fromEntries(this.__items.map((o) => [o.name, o])); }
    toJSON() { return this.__items.map(plain); }
  }
  G.FieldsList = FieldsList;

  // ---- collections -------------------------------------------------------------
  class Collection {
    constructor(data) {
      Object.defineProperty(this, "__new", { value: true, writable: true });
      this.type = "base";
      this.fields = new FieldsList([]);
      unmarshal(data || {}, this);
    }
    isNew() { return this.__new; }
    isAuth() { return this.type === "auth"; }
    isView() { return this.type === "view"; }
    isBase() { return this.type === "base"; }
    toJSON() {
      const out = {};
      for (const k of Object.keys(this)) out[k] = k === "fields" ? this.fields.toJSON() : clone(this[k]);
      return out;
    }
    static __stored(json) {
      const c = new Collection(json);
      c.__new = false;
      return c;
    }
  }
  G.Collection = Collection;

  // ---- records -----------------------------------------------------------------
  class Record {
    constructor(collection, data) {
      const c = typeof collection === "string" ? app.findCollectionByNameOrId(collection) : collection || {};
      Object.defineProperty(this, "__c", { value: { id: c.id || "", name: c.name || "" }, writable: true });
      Object.defineProperty(this, "__d", { value: {}, writable: true });
      Object.defineProperty(this, "__new", { value: true, writable: true });
      if (data) this.load(data);
    }
    get id() { return this.__d.id || ""; }
    set id(v) { this.__d.id = v; }
    collection() { return this.__c; }
    isNew() { return this.__new; }
    get(key) { return this.__d[key]; }
    set(key, value) { this.__d[String(key)] = value; }
    load(data) { for (const k of Object.keys(data)) this.set(k, data[k]); }
    getString(key) { const v = this.__d[key]; return v == null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v); }
    getInt(key) { const n = Math.trunc(Number(this.__d[key])); return Number.isFinite(n) ? n : 0; }
    getBool(key) { const v = this.__d[key]; return v === true || v === 1 || v === "true"; }
    setPassword(v) { this.set("password", v); }
    setEmail(v) { this.set("email", v); }
    setVerified(v) { this.set("verified", !!v); }
    email() { return this.getString("email"); }
    toJSON() { return Object.assign({}, this.__d); }
    publicExport() { return this.toJSON(); }
    static __stored(json) {
      const r = new Record({ id: json.collectionId, name: json.collectionName }, null);
      r.__d = Object.assign({}, json);
      r.__new = false;
      return r;
    }
  }
  G.Record = Record;

  // Nested objects merge key by key (a generated diff lists only the changed
  // keys of, say, passwordAuth); anything else replaces.
  const isPlain = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  function merge(old, v) {
    if (!isPlain(old) || !isPlain(v)) return v;
    const out = Object.assign({}, old);
    for (const [k, x] of Object.entries(v)) out[k] = merge(out[k], x);
    return out;
  }

  // unmarshal(data, target): sets every key of data on target (a collection's
  // fields list is replaced as a whole, as PocketBase's JSON unmarshal does).
  function unmarshal(data, target) {
    if (!target || typeof target !== "object") throw new TypeError("unmarshal: the target must be an object");
    const src = data && typeof data === "object" ? clone(data) : {};
    if (target instanceof Record) { target.load(src); return target; }
    for (const [k, v] of Object.entries(src)) {
      if (k === "fields" && target instanceof Collection) target.fields = new FieldsList(Array.isArray(v) ? v : []);
      else target[k] = merge(target[k], v);
    }
    return target;
  }
  G.unmarshal = unmarshal;

  const cname = (c) => (c && typeof c === "object" ? c.id || c.name : String(c));

  // ---- raw SQL -----------------------------------------------------------------
  class Query {
    constructor(sql) { this.__sql = String(sql); this.__params = {}; }
    bind(params) { Object.assign(this.__params, params || {}); return this; }
    execute() {
      const n = call("sql", { sql: this.__sql, params: this.__params });
      return { rowsAffected: () => n, lastInsertId: () => 0 };
    }
  }

  // ---- app ---------------------------------------------------------------------
  const app = {
    findCollectionByNameOrId(idOrName) { return Collection.__stored(call("findCollection", String(idOrName))); },
    findRecordById(c, id) { return Record.__stored(call("findRecord", { c: cname(c), id: String(id) })); },
    importCollections(list, deleteMissing) {
      if (!Array.isArray(list)) throw new TypeError("importCollections expects an array of collections");
      call("importCollections", { collections: clone(list), deleteMissing: !!deleteMissing });
    },
    save(model) {
      if (model instanceof Collection) {
        const saved = call("saveCollection", { data: model.toJSON(), isNew: model.__new });
        unmarshal(saved, model);
        model.__new = false;
        return;
      }
      if (model instanceof Record) {
        if (!model.__new) throw new Error("updating records is not supported in migrations yet");
        const saved = call("createRecord", { c: cname(model.__c), data: model.toJSON() });
        model.__d = Object.assign({}, saved);
        model.__new = false;
        return;
      }
      throw new TypeError("save expects a Collection or a Record");
    },
    delete(model) {
      if (model instanceof Collection) { call("deleteCollection", model.id || model.name); return; }
      if (model instanceof Record) { call("deleteRecord", { c: cname(model.__c), id: model.id }); return; }
      throw new TypeError("delete expects a Collection or a Record");
    },
    db() { return { newQuery: (sql) => new Query(sql) }; },
    runInTransaction(fn) { return fn(app); },
    isTransactional() { return true; },
  };
  G.$app = app;

  // ---- registration and running ----------------------------------------------------
  let registered = null;
  G.migrate = (up, down) => {
    if (registered) throw new Error("migrate() may be called only once per file");
    if (typeof up !== "function") throw new TypeError("migrate: the up function is required");
    registered = { up, down: typeof down === "function" ? down : null };
  };
  const describe = (err) => (err instanceof Error ? (err.message || String(err)) : String(err));
  G.__runMigration = (direction) => {
    if (!registered) return JSON.stringify({ err: "the file does not call migrate()" });
    const fn = registered[direction];
    try {
      if (fn) fn(app);
      return JSON.stringify({ ok: true });
    } catch (err) {
      if (err instanceof InternalError) throw err; // out of memory, interrupted: the host sees them
      return JSON.stringify({ err: describe(err) });
    }
  };
})(globalThis);
