// The JavaScript half of the hooks API (PocketBase's JSVM names and shapes).
// Evaluated once per runtime before the hook files. Everything that touches
// the server goes through one host function, captured here and removed from
// the global object so hook code can only reach it through this API.
(function (G) {
  "use strict";
  const host = G.__host;
  delete G.__host;

  // ---- errors --------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message, data) {
      super(message == null ? "" : String(message));
      this.name = "ApiError";
      this.status = Number(status) || 0;
      this.data = data == null ? {} : data;
    }
  }
  const sub = (name, status, fallback) =>
    class extends ApiError {
      constructor(message, data) {
        super(status, message == null || message === "" ? fallback : message, data);
        this.name = name;
      }
    };
  const GENERIC = "Something went wrong while processing your request.";
  const errors = {
    ApiError,
    BadRequestError: sub("BadRequestError", 400, GENERIC),
    NotFoundError: sub("NotFoundError", 404, "The requested resource wasn't found."),
    ForbiddenError: sub("ForbiddenError", 403, "You are not allowed to perform this request."),
    UnauthorizedError: sub("UnauthorizedError", 401, "Missing or invalid authentication."),
    TooManyRequestsError: sub("TooManyRequestsError", 429, "Too Many Requests."),
    InternalServerError: sub("InternalServerError", 500, GENERIC),
  };
  Object.assign(G, errors);

  const ask = (op, args) => host(op, JSON.stringify(args === undefined ? null : args));
  function fail(err) {
    const e = new ApiError(err.status, err.message, err.data);
    Object.defineProperty(e, "__safe", { value: true });
    throw e;
  }
  function call(op, args) {
    const reply = JSON.parse(ask(op, args));
    if (reply.err) fail(reply.err);
    return reply.ok;
  }
  // `call` for an answer kept as JSON text, to be parsed only if read.
  function callText(op, args) {
    const reply = ask(op, args);
    if (reply.startsWith('{"ok":')) return reply.slice(6, -1);
    return fail(JSON.parse(reply).err);
  }

  // ---- console, toString, sleep, $os ---------------------------------------
  const show = (v) => {
    if (typeof v === "string") return v;
    try {
      return v instanceof Error ? String(v) : JSON.stringify(v) ?? String(v);
    } catch (_) {
      return String(v);
    }
  };
  const log = (level) => (...args) => {
    host("log", JSON.stringify({ level, message: args.map(show).join(" ") }));
  };
  G.console = { log: log("info"), info: log("info"), debug: log("debug"), warn: log("warn"), error: log("error") };
  G.toString = function (v) {
    if (v == null) return "";
    if (typeof v === "string") return v;
    if (Array.isArray(v) && v.every((b) => Number.isInteger(b) && b >= 0 && b < 256)) {
      return String.fromCharCode(...v);
    }
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  };
  G.sleep = (ms) => { call("sleep", Number(ms) || 0); };
  G.$os = { getenv: (name) => call("getenv", String(name)) };

  // ---- $http ---------------------------------------------------------------
  G.$http = {
    send(config) {
      const c = config || {};
      const body = c.body == null ? "" : typeof c.body === "string" ? c.body : JSON.stringify(c.body);
      const headers = {};
      for (const [k, v] of Object.entries(c.headers || {})) headers[k] = String(v);
      return call("httpSend", { url: str(c.url), method: str(c.method || "GET"), body, headers, timeout: Number(c.timeout) || 0 });
    },
  };

  // ---- $security -------------------------------------------------------------
  const text = (op) => (t, secret) => call(op, { text: str(t), secret: str(secret) });
  G.$security = {
    randomString: (n) => call("randomString", { n: Number(n) || 0 }),
    randomStringWithAlphabet: (n, alphabet) => call("randomString", { n: Number(n) || 0, alphabet: str(alphabet) }),
    pseudorandomString: (n) => call("pseudorandomString", { n: Number(n) || 0 }),
    pseudorandomStringWithAlphabet: (n, alphabet) => call("pseudorandomString", { n: Number(n) || 0, alphabet: str(alphabet) }),
    md5: (t) => text("md5")(t), sha256: (t) => text("sha256")(t), sha512: (t) => text("sha512")(t),
    hs256: text("hs256"), hs512: text("hs512"),
    equal: (a, b) => call("equal", { text: str(a), secret: str(b) }),
    createJWT: (payload, secret, duration) => call("createJWT", { payload: payload || {}, secret: str(secret), duration: Number(duration) || 0 }),
    parseJWT: (token, secret) => call("parseJWT", { token: str(token), secret: str(secret) }),
    encrypt: text("encrypt"),
    decrypt: text("decrypt"),
  };

  const str = (v) => (v == null ? "" : String(v));

  // ---- records -------------------------------------------------------------
  class Record {
    constructor(collection, data) {
      const c = typeof collection === "string" ? call("collection", collection) : collection || {};
      Object.defineProperty(this, "__c", { value: { id: c.id || "", name: c.name || "", type: c.type || "" }, writable: true });
      Object.defineProperty(this, "__d", { value: {}, writable: true });
      Object.defineProperty(this, "__changed", { value: new Set(), writable: true });
      Object.defineProperty(this, "__persisted", { value: false, writable: true });
      if (data) this.load(data);
    }
    static __stored(json) {
      const r = new Record({ id: json.collectionId, name: json.collectionName }, null);
      r.__d = Object.assign({}, json);
      r.__persisted = true;
      return r;
    }
    get id() { return this.__d.id || ""; }
    set id(v) { this.set("id", v); }
    collection() { return this.__c; }
    tableName() { return this.__c.name; }
    isNew() { return !this.__persisted; }
    get(key) { return this.__d[key]; }
    set(key, value) {
      key = String(key);
      this.__d[key] = value;
      this.__changed.add(key);
    }
    load(data) { for (const k of Object.keys(data)) this.set(k, data[k]); }
    getString(key) { const v = this.__d[key]; return v == null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v); }
    getInt(key) { const n = Math.trunc(Number(this.__d[key])); return Number.isFinite(n) ? n : 0; }
    getFloat(key) { const n = Number(this.__d[key]); return Number.isFinite(n) ? n : 0; }
    getBool(key) { const v = this.__d[key]; return v === true || v === 1 || v === "true" || v === "1"; }
    getStringSlice(key) { const v = this.__d[key]; return Array.isArray(v) ? v.map(String) : v == null || v === "" ? [] : [String(v)]; }
    email() { return this.getString("email"); }
    setEmail(v) { this.set("email", v); }
    verified() { return this.getBool("verified"); }
    isSuperuser() { return this.__c.name === "_superusers"; }
    // onRecordEnrich: which fields the response shows.
    hide(...names) { this.__view().hidden.push(...names.flat().map(String)); return this; }
    unhide(...names) { this.__view().unhidden.push(...names.flat().map(String)); return this; }
    withCustomData(on) { this.__view().custom = !!on; return this; }
    __view() {
      if (!this.__v) Object.defineProperty(this, "__v", { value: { hidden: [], unhidden: [], custom: false }, writable: true });
      return this.__v;
    }
    publicExport() { return Object.assign({}, this.__d); }
    toJSON() { return this.publicExport(); }
    __changes() { const out = {}; for (const k of this.__changed) if (k !== "id" || !this.__persisted) out[k] = this.__d[k]; return out; }
    __replace(json) { this.__d = Object.assign({}, json); this.__changed = new Set(); this.__persisted = true; if (json.collectionId) this.__c.id = json.collectionId; }
  }
  G.Record = Record;
  const wrap = (json) => (json == null ? null : Record.__stored(json));
  const cname = (c) => (c && typeof c === "object" ? c.id || c.name : String(c));

  // ---- $app (superuser-level, no rules) -------------------------------------
  const app = {
    findRecordById(c, id) { return wrap(call("findRecordById", { c: cname(c), id: String(id) })); },
    findRecordsByFilter(c, filter, sort, limit, offset, params) {
      const items = call("findRecordsByFilter", {
        c: cname(c), filter: filter == null ? "" : String(filter), sort: sort == null ? "" : String(sort),
        limit: Number(limit) || 0, offset: Number(offset) || 0, params: params || {},
      });
      return items.map(wrap);
    },
    findFirstRecordByFilter(c, filter, params) {
      const found = app.findRecordsByFilter(c, filter, "", 1, 0, params);
      if (!found.length) throw new errors.NotFoundError();
      return found[0];
    },
    findCollectionByNameOrId(name) { return call("collection", String(name)); },
    save(record) {
      if (!(record instanceof Record)) throw new errors.BadRequestError("save expects a Record.");
      const saved = record.__persisted
        ? call("update", { c: cname(record.__c), id: record.id, data: record.__changes() })
        : call("create", { c: cname(record.__c), data: record.__changes() });
      record.__replace(saved);
    },
    delete(record) {
      if (!(record instanceof Record)) throw new errors.BadRequestError("delete expects a Record.");
      call("delete", { c: cname(record.__c), id: record.id });
    },
  };
  G.$app = app;

  // ---- mail ------------------------------------------------------------------
  const addresses = (list) => (Array.isArray(list) ? list : list ? [list] : [])
    .map((a) => (a && typeof a === "object" ? a.address : a))
    .filter((a) => a != null && a !== "")
    .map(String);
  class MailerMessage {
    constructor(data) { Object.assign(this, { from: {}, to: [], cc: [], bcc: [], subject: "", html: "", text: "", headers: {} }, data || {}); }
  }
  G.MailerMessage = MailerMessage;
  const mailClient = {
    send(message) {
      const m = message || {};
      call("sendMail", {
        to: [...addresses(m.to), ...addresses(m.cc), ...addresses(m.bcc)],
        subject: str(m.subject),
        html: m.html ? String(m.html) : str(m.text).replace(/&/g, "&amp;").replace(/</g, "&lt;"),
      });
    },
  };
  app.newMailClient = () => mailClient;
  // Raw SQL with {:name} placeholders bound as values (PocketBase's dbx).
  app.db = () => ({
    newQuery(sql) {
      let params = {};
      const run = (mode) => call("dbQuery", { sql: String(sql), params, mode });
      const q = {
        bind(p) { params = Object.assign({}, params, p || {}); return q; },
        all(out) {
          const rows = run("all");
          if (Array.isArray(out)) { out.length = 0; out.push(...rows); }
          return rows;
        },
        one(out) {
          const rows = run("one");
          if (!rows.length) throw new errors.NotFoundError();
          if (out && typeof out === "object") Object.assign(out, rows[0]);
          return rows[0];
        },
        execute() { return run("execute"); },
      };
      return q;
    },
  });
  // Everything fn writes commits together, or not at all when it throws.
  app.runInTransaction = (fn) => {
    if (typeof fn !== "function") throw new TypeError("runInTransaction expects a function");
    const depth = call("txBegin", null);
    let ok = false;
    try {
      fn(app);
      ok = true;
    } finally {
      call("txEnd", { depth, commit: ok });
    }
  };

  // ---- $apis middlewares ---------------------------------------------------
  const requireAuth = (...names) => (e) => {
    if (!e.auth) throw new errors.UnauthorizedError("The request requires valid record authorization token.");
    if (names.length && !names.includes(e.auth.collection().name)) {
      throw new errors.ForbiddenError("The authorized record is not allowed to perform this action.");
    }
    return e.next();
  };
  const pass = () => (e) => e.next();
  G.$apis = {
    requireAuth,
    requireSuperuserAuth: () => requireAuth("_superusers"),
    requireGuestOnly: () => (e) => {
      if (e.auth) throw new errors.BadRequestError("The request can be accessed only by guests.");
      return e.next();
    },
    bodyLimit: pass, gzip: pass, skipSuccessActivityLog: pass,
  };
  class Middleware {
    constructor(func, priority, id) { this.func = func; this.priority = priority || 0; this.id = id || ""; }
  }
  G.Middleware = Middleware;
  const fnOf = (m) => (typeof m === "function" ? m : m instanceof Middleware ? m.func : null);

  // ---- registration ----------------------------------------------------------
  const routes = [];
  const globalMiddlewares = [];
  const hooks = {};
  // The handlers of a hook for one collection, worked out once.
  const handlerCache = new Map();
  function handlersFor(name, c) {
    const key = name + "\u0000" + c.id + "\u0000" + c.name;
    let fns = handlerCache.get(key);
    if (fns === undefined) {
      fns = (hooks[name] || [])
        .filter((h) => !h.tags.length || h.tags.includes(c.name) || h.tags.includes(c.id))
        .map((h) => h.fn);
      handlerCache.set(key, fns);
    }
    return fns;
  }
  G.routerAdd = (method, path, handler, ...middlewares) => {
    if (typeof handler !== "function") throw new TypeError("routerAdd: the handler must be a function");
    const mws = middlewares.map(fnOf);
    if (mws.some((m) => !m)) throw new TypeError("routerAdd: middlewares must be functions");
    routes.push({ method: String(method).toUpperCase(), path: String(path), handler, mws });
  };
  G.routerUse = (...middlewares) => {
    const mws = middlewares.map(fnOf);
    if (mws.some((m) => !m)) throw new TypeError("routerUse: middlewares must be functions");
    globalMiddlewares.push(...mws);
  };
  for (const name of G.__hookNames) {
    G[name] = (handler, ...tags) => {
      const fn = fnOf(handler);
      if (!fn) throw new TypeError(name + ": the handler must be a function");
      (hooks[name] = hooks[name] || []).push({ fn, tags: tags.map(String) });
      handlerCache.clear();
    };
  }
  delete G.__hookNames;
  // Cron jobs are registered while the hook files load (a later cronAdd,
  // from inside a handler, only warns: the scheduler is built from the load).
  const crons = new Map();
  let loading = true;
  G.cronAdd = (id, expression, handler) => {
    if (typeof handler !== "function") throw new TypeError("cronAdd: the handler must be a function");
    if (!loading) { console.warn("cronAdd outside loading is not supported; job " + String(id) + " ignored"); return; }
    crons.delete(String(id));
    crons.set(String(id), { expression: String(expression), fn: handler });
  };
  G.cronRemove = (id) => {
    if (!loading) { console.warn("cronRemove outside loading is not supported"); return; }
    crons.delete(String(id));
  };
  G.migrate = () => { throw new Error("migrate() belongs in a pb_migrations/*.js file, not in pb_hooks"); };

  // ---- events ----------------------------------------------------------------
  // Runs `fns` over `e`, each passing on with e.next(), then `last`. The
  // position lives on the event and next() on its prototype, so an event
  // holds no closure over itself: it is freed by reference counting when
  // the dispatch returns, without waiting for the cycle collector.
  function chain(e, fns, last) {
    e.__fns = fns;
    e.__at = 0;
    e.__last = last;
    return e.next();
  }
  function next() {
    const fns = this.__fns;
    if (fns === undefined) return undefined;
    const i = this.__at++;
    if (i < fns.length) return fns[i](this);
    if (i === fns.length && this.__last) return this.__last(this);
  }

  // Own data property `name` = `value` on `obj` (replacing a getter).
  const own = (obj, name, value) => {
    Object.defineProperty(obj, name, { value, writable: true, enumerable: true, configurable: true });
    return value;
  };
  // A lazily built property of a prototype: made on first read, then an
  // ordinary (writable) property of the instance.
  const lazyOf = (proto, name, make) => Object.defineProperty(proto, name, {
    get() { return own(this, name, make(this)); },
    set(value) { own(this, name, value); },
    configurable: true,
  });
  // The same, made from the object's request data.
  const lazy = (proto, name, make) => lazyOf(proto, name, (self) => make(self.__ev));

  // `e.request`: built only when a hook reads it.
  function Request(ev) {
    this.__ev = ev;
    this.method = ev.method;
    this.remoteAddr = ev.remoteIp || "";
  }
  lazy(Request.prototype, "url", (ev) => ({
    path: ev.path,
    rawQuery: ev.rawQuery || "",
    query: () => ({ get: (k) => (ev.query || {})[k] || "" }),
    string: () => ev.path + (ev.rawQuery ? "?" + ev.rawQuery : ""),
  }));
  lazy(Request.prototype, "header", (ev) => {
    const headers = ev.headers || {};
    return { get: (k) => headers[String(k).toLowerCase().replace(/-/g, "_")] || "" };
  });
  Request.prototype.pathValue = function (name) { return (this.__ev.params || {})[name] || ""; };

  // A request event: its data on the instance, its methods on the
  // prototype, so an event costs a few allocations rather than a closure
  // per method (hooked requests build one each).
  function RequestEvent(ev, state) {
    this.__ev = ev;
    this.__state = state;
  }
  const eventProto = RequestEvent.prototype;
  eventProto.app = app;
  eventProto.next = next;
  lazy(eventProto, "auth", (ev) => (ev.auth ? Record.__stored(ev.auth) : null));
  lazy(eventProto, "request", (ev) => new Request(ev));
  eventProto.requestInfo = function () {
    const ev = this.__ev;
    return { method: ev.method, query: ev.query || {}, headers: ev.headers || {}, body: ev.body || {}, context: "default", auth: this.auth };
  };
  eventProto.realIP = function () { return this.__ev.remoteIp || ""; };
  eventProto.hasSuperuserAuth = function () { return !!(this.auth && this.auth.isSuperuser()); };
  eventProto.isTLS = () => false;
  // The first answer a handler gives is the one sent.
  eventProto.__answer = function (status, type, body) {
    const state = this.__state;
    if (!state.resp) state.resp = { status: Number(status) || 200, type, body };
  };
  eventProto.json = function (status, body) {
    this.__answer(status, "json", body === undefined ? null : JSON.parse(JSON.stringify(body)));
  };
  eventProto.string = function (status, body) { this.__answer(status, "text", toString(body)); };
  eventProto.html = function (status, body) { this.__answer(status, "html", toString(body)); };
  eventProto.noContent = function (status) { this.__answer(status, "none", null); };
  eventProto.redirect = function (status, url) { this.__answer(status, "redirect", String(url)); };
  for (const [name, cls] of Object.entries(errors)) {
    if (name !== "ApiError") eventProto[name[0].toLowerCase() + name.slice(1)] = (message, data) => new cls(message, data);
  }

  const baseEvent = (ev, state) => new RequestEvent(ev, state);

  // A record hook's event. The request, and the record (or list result),
  // arrive as JSON text and are parsed on first read: a hook that only
  // calls e.next() parses neither.
  function RecordEvent(head, subject, request, state) {
    this.__head = head;
    this.__subject = subject;
    this.__request = request;
    this.__state = state;
  }
  const recordEventProto = (RecordEvent.prototype = Object.create(eventProto));
  lazyOf(recordEventProto, "__ev", (e) => JSON.parse(e.__request));
  lazyOf(recordEventProto, "record", (e) => {
    if (e.__head.hasResult) return undefined;
    const json = JSON.parse(e.__subject);
    if (json == null) return null;
    const c = e.__head.collection;
    const r = Record.__stored(json);
    r.__c = { id: c.id, name: c.name, type: c.type };
    if (e.__written) {
      // The record as e.next() wrote it: stored, nothing changed.
      if (json.collectionId) r.__c.id = json.collectionId;
    } else {
      // A record being created is new even with a submitted id.
      if (!json.id || e.__head.isNew) r.__persisted = false;
      for (const k of e.__head.changed || []) r.__changed.add(k);
    }
    return r;
  });
  lazyOf(recordEventProto, "result", (e) => {
    if (!e.__head.hasResult) return undefined;
    const result = JSON.parse(e.__subject);
    return Object.assign({}, result, { items: result.items.map(wrap) });
  });
  const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

  // ValidationError values in error data (PocketBase keeps their code and
  // message; every other leaf becomes an opaque "invalid value").
  const tagged = (v, depth) => {
    if (v && v.__validation) return { $validation: { code: String(v.code), message: String(v.message) } };
    if (!v || typeof v !== "object" || Array.isArray(v) || (depth | 0) > 16) return v;
    const out = {};
    for (const k of Object.keys(v)) out[k] = tagged(v[k], (depth | 0) + 1);
    return out;
  };

  // The answer "the record action ran" (its result is the response).
  const ACTION = Object.freeze({ status: 0, type: "action", body: null });
  const ACTION_DONE = JSON.stringify({ resp: ACTION, error: null });
  function outcome(state, err) {
    if (err === undefined) {
      return state.resp === ACTION ? ACTION_DONE : JSON.stringify({ resp: state.resp || null, error: null });
    }
    // Out of memory and other engine faults: let the host see them as such.
    if (err instanceof InternalError) throw err;
    if (err instanceof ApiError) {
      return JSON.stringify({ resp: state.resp || null, error: { status: err.status, message: err.message, data: tagged(err.data), safe: !!err.__safe } });
    }
    const detail = err instanceof Error ? String(err) + "\n" + (err.stack || "") : "thrown: " + show(err);
    return JSON.stringify({ resp: state.resp || null, error: { status: 400, message: "", data: {}, log: detail } });
  }

  G.__manifest = () => (loading = false, JSON.stringify({
    crons: [...crons].map(([id, c]) => ({ id, expression: c.expression })),
    routes: routes.map((r) => ({ method: r.method, path: r.path })),
    hooks: Object.fromEntries(Object.entries(hooks).map(([k, list]) => [k, list.map((h) => h.tags)])),
  }));

  G.__dispatchCron = (id) => {
    const state = { resp: null };
    const job = crons.get(id);
    try {
      if (job) job.fn();
      return outcome(state);
    } catch (err) {
      return outcome(state, err);
    }
  };

  G.__dispatchRoute = (index, raw) => {
    const ev = JSON.parse(raw);
    const state = { resp: null };
    const route = routes[index];
    try {
      const e = baseEvent(ev, state);
      chain(e, [...globalMiddlewares, ...route.mws, route.handler], null);
      return outcome(state);
    } catch (err) {
      return outcome(state, err);
    }
  };

  // onRecordEnrich for each record of a response. A field outside the
  // caller's view appears only when a hook unhides it by name (its value
  // is then read as a superuser); new keys only with withCustomData(true).
  function enrichRecords(ev, records) {
    const c = ev.collection;
    const fns = handlersFor("onRecordEnrich", c);
    return records.map((json) => {
      const e = baseEvent(ev, { resp: null });
      e.collection = c;
      e.record = Record.__stored(json);
      e.record.__c = { id: c.id, name: c.name, type: c.type };
      chain(e, fns, null);
      const r = e.record;
      const v = r.__v || { hidden: [], unhidden: [], custom: false };
      const keys = new Set(Object.keys(json));
      if (v.custom) for (const k of r.__changed) keys.add(k);
      let full = null;
      for (const k of v.unhidden) {
        if (keys.has(k) || k === "password" || k === "tokenKey") continue;
        if (!(k in r.__d) || !r.__changed.has(k)) {
          // A deleted record (a realtime delete event) has nothing to read.
          if (!full) {
            try { full = call("findRecordById", { c: c.id, id: r.id }); } catch (_) { full = {}; }
          }
          if (k in full) r.__d[k] = full[k];
        }
        if (k in r.__d) keys.add(k);
      }
      for (const k of v.hidden) keys.delete(k);
      const shown = {};
      for (const k of keys) if (k in r.__d) shown[k] = r.__d[k];
      return shown;
    });
  }
  G.__dispatchEnrich = (raw) => {
    const ev = JSON.parse(raw);
    const state = { resp: null };
    try {
      state.resp = { status: 200, type: "json", body: enrichRecords(ev, ev.records) };
      return outcome(state);
    } catch (err) {
      return outcome(state, err);
    }
  };
  // `$apis.recordAuthResponse`'s record through onRecordEnrich, with the
  // record logging in as `e.auth` (as the REST auth answers run it).
  function enrichAuthRecord(e, c, shaped) {
    if (!handlersFor("onRecordEnrich", c).length) return shaped;
    const auth = Object.assign({}, shaped, { collectionId: c.id, collectionName: c.name });
    for (const secret of ["password", "tokenKey", "expand"]) delete auth[secret];
    const ev = Object.assign({}, e.__ev, { collection: c, auth });
    return enrichRecords(ev, [shaped])[0];
  }

  // The last step of a record hook chain: the action the event names.
  function recordAction(e) {
    const action = e.__head.action;
    if (action === "none") return;
    if (action === "auth") {
      const body = { token: e.token, record: e.record.toJSON() };
      if (e.meta != null) body.meta = e.meta;
      e.json(200, body);
      return;
    }
    if (action === "respond") {
      const body = e.result
        ? Object.assign({}, e.result, { items: e.result.items.map((r) => (r && r.toJSON ? r.toJSON() : r)) })
        : e.record.toJSON();
      e.json(200, body);
      return;
    }
    const state = e.__state;
    if (action === "batch") {
      // onBatchRequest: the batch runs with e.batch as the hooks left it.
      call("next", { requests: e.batch });
      if (!state.resp) state.resp = ACTION;
      return;
    }
    if (!hasOwn(e, "record")) {
      // No hook read or replaced the record: the fields the event carried.
      const written = callText("next", null);
      if (!state.resp) state.resp = ACTION;
      if (written !== "null") {
        e.__subject = written;
        e.__written = true;
      }
      return;
    }
    const result = call("next", e.record.__changes());
    if (!state.resp) state.resp = ACTION;
    if (result) e.record.__replace(result);
  }

  G.__dispatchRecord = (name, head, subject, request) => {
    const ev = JSON.parse(head);
    const state = { resp: null };
    const c = ev.collection;
    try {
      const e = new RecordEvent(ev, subject, request, state);
      e.collection = c;
      if (ev.error != null) e.error = new ApiError(400, String(ev.error));
      if (ev.fields && typeof ev.fields === "object") Object.assign(e, ev.fields);
      if (ev.action === "auth") {
        e.token = ev.token;
        e.meta = ev.meta;
        e.authMethod = ev.authMethod;
      }
      chain(e, handlersFor(name, c), recordAction);
      return outcome(state);
    } catch (err) {
      return outcome(state, err);
    }
  };
  // `onRecordAuthRequest` for an auth answer a hook builds
  // (`$apis.recordAuthResponse`), as the REST auth endpoints run it: the
  // handlers see (and may change) the record, token and meta, and the last
  // step answers them unless a handler answered already.
  function authRequest(e, c, shaped, token, meta, authMethod) {
    const fns = handlersFor("onRecordAuthRequest", c);
    const ae = Object.assign(Object.create(Object.getPrototypeOf(e)), e);
    ae.collection = c;
    ae.record = Record.__stored(shaped);
    ae.record.__c = { id: c.id, name: c.name, type: "auth" };
    ae.token = token;
    ae.meta = meta;
    ae.authMethod = authMethod;
    return chain(ae, fns, (ae) => {
      const body = { token: ae.token, record: ae.record.toJSON() };
      if (ae.meta != null) body.meta = ae.meta;
      return ae.json(200, body);
    });
  }

  // For prelude_more.js, which removes it again.
  G.__internal = { call, wrap, cname, str, errors, ApiError, app, Record, authRequest, enrichAuthRecord };
})(globalThis);
