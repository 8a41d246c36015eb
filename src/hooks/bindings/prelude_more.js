// More of PocketBase's JSVM API, over the internals prelude.js leaves in
// `__internal` (removed here, so hook code never sees them): `$app`'s read
// helpers and logger, `$dbx` expressions and `$app.recordQuery`, `$mails`,
// more of `$security` and `$apis`, `DateTime` and `ValidationError`.
// `$dbx` never puts a value into SQL text: every value becomes a `{:name}`
// placeholder bound by the host, and every column name is checked against
// a plain-identifier pattern and bracket-quoted.
(function (G) {
  "use strict";
  const { call, wrap, cname, str, errors, ApiError, app, Record, authRequest, enrichAuthRecord } = G.__internal;
  delete G.__internal;
  const bad = (message) => new errors.BadRequestError(message);
  const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

  // ---- ValidationError, DateTime ---------------------------------------------
  class ValidationError extends Error {
    constructor(code, message) {
      super(str(message));
      this.name = "ValidationError";
      this.code = str(code);
      Object.defineProperty(this, "__validation", { value: true });
    }
    error() { return this.message; }
    toJSON() { return { code: this.code, message: this.message }; }
  }
  G.ValidationError = ValidationError;

  // PocketBase's DateTime: always UTC, "2006-01-02 15:04:05.000Z" as text,
  // durations in nanoseconds (Go's time.Duration). Millisecond precision.
  const NS_PER_MS = 1e6;
  const pad = (n, w) => String(n).padStart(w, "0");
  class DateTime {
    constructor(date, location) {
      if (location != null && location !== "" && location !== "UTC") {
        throw bad("DateTime: only UTC is supported as the parse location.");
      }
      // As PocketBase's: no date or "" is now; text that does not parse is
      // the zero time (string() answers "").
      let ms;
      if (date instanceof DateTime) ms = date.__ms;
      else if (date === undefined || date === null || date === "") ms = Date.now();
      else {
        const text = String(date).trim().replace(" ", "T");
        ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) || !/T/.test(text) ? text : text + "Z");
        if (!Number.isFinite(ms)) ms = null;
      }
      Object.defineProperty(this, "__ms", { value: ms, writable: true });
    }
    static __of(ms) { const d = new DateTime(); d.__ms = ms; return d; }
    isZero() { return this.__ms === null; }
    unix() { return this.__ms === null ? -62135596800 : Math.floor(this.__ms / 1000); }
    string() {
      if (this.__ms === null) return "";
      const d = new Date(this.__ms);
      return pad(d.getUTCFullYear(), 4) + "-" + pad(d.getUTCMonth() + 1, 2) + "-" + pad(d.getUTCDate(), 2) + " " +
        pad(d.getUTCHours(), 2) + ":" + pad(d.getUTCMinutes(), 2) + ":" + pad(d.getUTCSeconds(), 2) + "." +
        pad(d.getUTCMilliseconds(), 3) + "Z";
    }
    add(ns) {
      const n = Number(ns);
      if (!Number.isFinite(n)) throw bad("DateTime.add expects a duration in nanoseconds.");
      return DateTime.__of((this.__ms || 0) + Math.trunc(n / NS_PER_MS));
    }
    sub(other) { return ((this.__ms || 0) - ((other && other.__ms) || 0)) * NS_PER_MS; }
    addDate(years, months, days) {
      const d = new Date(this.__ms || 0);
      d.setUTCFullYear(d.getUTCFullYear() + (Math.trunc(years) || 0), d.getUTCMonth() + (Math.trunc(months) || 0), d.getUTCDate() + (Math.trunc(days) || 0));
      return DateTime.__of(d.getTime());
    }
    compare(other) { const a = this.__ms || 0, b = (other && other.__ms) || 0; return a < b ? -1 : a > b ? 1 : 0; }
    after(other) { return this.compare(other) > 0; }
    before(other) { return this.compare(other) < 0; }
    equal(other) { return this.compare(other) === 0; }
    time() { return new Date(this.__ms || 0); }
    toJSON() { return this.string(); }
    toString() { return this.string(); }
  }
  G.DateTime = DateTime;
  // PocketBase's typed slice for query results: here a plain array that
  // all(out) fills (with Records for a recordQuery).
  G.arrayOf = () => [];

  // ---- $app.logger() -----------------------------------------------------------
  const shown = (v) => {
    if (typeof v === "string") return v;
    try { return JSON.stringify(v) ?? String(v); } catch (_) { return String(v); }
  };
  function logger(attrs) {
    const emit = (level) => (message, ...kv) => {
      const pairs = attrs.concat(kv);
      let out = str(message);
      for (let i = 0; i < pairs.length; i += 2) {
        out += " " + shown(pairs[i]) + "=" + (i + 1 < pairs.length ? shown(pairs[i + 1]) : "!BADKEY");
      }
      call("log", { level, message: out });
    };
    return {
      debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error"),
      with: (...kv) => logger(attrs.concat(kv)),
      withGroup: () => logger(attrs),
    };
  }
  app.logger = () => logger([]);
  app.settings = () => call("settings", null);
  app.isDev = () => call("isDev", null);

  // ---- $dbx --------------------------------------------------------------------
  let seq = 0;
  // Binds `value` under a fresh name; only the placeholder enters the SQL.
  const bind = (params, value) => {
    const name = "dbx" + seq++;
    params[name] = value instanceof DateTime ? value.string() : value instanceof Record ? value.id : value === undefined ? null : value;
    return "{:" + name + "}";
  };
  // The database's dialect, asked once per runtime.
  let dialect = null;
  const onPostgres = () => (dialect === null ? (dialect = call("dialect", null)) : dialect) === "postgres";
  const IDENT = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;
  const column = (raw) => {
    let name = str(raw).trim();
    const m = /^\[\[(.*)\]\]$/.exec(name) || /^\{\{(.*)\}\}$/.exec(name);
    if (m) name = m[1].trim();
    if (!IDENT.test(name)) throw bad("Invalid column name " + JSON.stringify(str(raw)) + ".");
    // SQLite: [name], not "name" (SQLite reads an unknown "name" as a string).
    const [open, close] = onPostgres() ? ['"', '"'] : ["[", "]"];
    return name.split(".").map((p) => open + p + close).join(".");
  };
  // An expression renders to SQL text plus its own bound values.
  class Expression {
    constructor(render) { Object.defineProperty(this, "__render", { value: render }); }
    build() { return this.__render().sql; }
  }
  const fixed = (sql, params) => new Expression(() => ({ sql, params: params || {} }));
  const render = (e) => {
    if (e == null) return { sql: "", params: {} };
    if (!(e instanceof Expression)) throw bad("Expected a $dbx expression.");
    return e.__render();
  };
  const join = (op, list) => {
    const parts = list.map(render).filter((r) => r.sql !== "");
    if (parts.length === 1) return parts[0];
    return {
      sql: parts.map((r) => "(" + r.sql + ")").join(" " + op + " "),
      params: Object.assign({}, ...parts.map((r) => r.params)),
    };
  };
  const MAX_IN_VALUES = 10000;
  const inList = (col, values, not) => {
    if (values.length > MAX_IN_VALUES) throw bad("At most " + MAX_IN_VALUES + " values in one IN.");
    if (!values.length) return fixed(not ? "" : "0=1");
    const params = {};
    const list = values.map((v) => bind(params, v)).join(", ");
    return fixed(column(col) + (not ? " NOT IN (" : " IN (") + list + ")", params);
  };
  class LikeExpression extends Expression {
    constructor(col, values, not, or) {
      super(() => {
        const params = {};
        const parts = this.__values.map((v) => {
          let text = str(v);
          if (this.__escape) text = text.replace(/[\\%_]/g, (c) => "\\" + c);
          text = (this.__left ? "%" : "") + text + (this.__right ? "%" : "");
          if (onPostgres()) {
            // SQLite's LIKE: on the value's text, ASCII letters folded only.
            return "CAST(" + this.__col + " AS text) COLLATE \"C\"" + (this.__not ? " NOT ILIKE " : " ILIKE ") + bind(params, text) + " ESCAPE '\\'";
          }
          return this.__col + (this.__not ? " NOT LIKE " : " LIKE ") + bind(params, text) + " ESCAPE '\\'";
        });
        return { sql: parts.join(this.__or ? " OR " : " AND "), params };
      });
      Object.assign(this, {});
      Object.defineProperties(this, {
        __col: { value: column(col) }, __values: { value: values }, __not: { value: not }, __or: { value: or },
        __left: { value: true, writable: true }, __right: { value: true, writable: true }, __escape: { value: true, writable: true },
      });
    }
    match(left, right) { this.__left = !!left; this.__right = !!right; return this; }
    escape(...chars) { this.__escape = chars.length > 0; return this; }
  }
  const dbx = {
    // Raw SQL from the hook's author; its {:name} values are bound (renamed
    // so they cannot collide with other expressions), [[col]] quoted.
    exp(sql, params) {
      const given = params || {};
      const out = {};
      const text = str(sql)
        .replace(/\[\[([^\]]*)\]\]|\{\{([^}]*)\}\}/g, (m, a, b) => column(a !== undefined ? a : b))
        .replace(/\{:([A-Za-z0-9_]+)\}/g, (m, name) => {
          if (!own(given, name)) throw bad("$dbx.exp: no value for {:" + name + "}.");
          return bind(out, given[name]);
        });
      return fixed(text, out);
    },
    hashExp(map) {
      const m = map || {};
      const parts = Object.keys(m).sort().map((k) => {
        const v = m[k];
        if (v === null || v === undefined) return fixed(column(k) + " IS NULL");
        if (Array.isArray(v)) return inList(k, v, false);
        if (v instanceof Expression) { const r = render(v); return fixed(column(k) + " = (" + r.sql + ")", r.params); }
        const params = {};
        return fixed(column(k) + " = " + bind(params, v), params);
      });
      return new Expression(() => join("AND", parts));
    },
    and: (...list) => new Expression(() => join("AND", list)),
    or: (...list) => new Expression(() => join("OR", list)),
    not: (e) => new Expression(() => { const r = render(e); return r.sql === "" ? r : { sql: "NOT (" + r.sql + ")", params: r.params }; }),
    in: (col, ...values) => inList(col, values, false),
    notIn: (col, ...values) => inList(col, values, true),
    like: (col, ...values) => new LikeExpression(col, values, false, false),
    notLike: (col, ...values) => new LikeExpression(col, values, true, false),
    orLike: (col, ...values) => new LikeExpression(col, values, false, true),
    orNotLike: (col, ...values) => new LikeExpression(col, values, true, true),
    between: (col, from, to) => { const p = {}; return fixed(column(col) + " BETWEEN " + bind(p, from) + " AND " + bind(p, to), p); },
    notBetween: (col, from, to) => { const p = {}; return fixed(column(col) + " NOT BETWEEN " + bind(p, from) + " AND " + bind(p, to), p); },
    exists: (e) => new Expression(() => { const r = render(e); return { sql: "EXISTS (" + r.sql + ")", params: r.params }; }),
    notExists: (e) => new Expression(() => { const r = render(e); return { sql: "NOT EXISTS (" + r.sql + ")", params: r.params }; }),
  };
  G.$dbx = dbx;

  // ---- $app.recordQuery and the finders built on it ------------------------------
  const ORDER = /^\s*(\[\[[^\]]*\]\]|[A-Za-z_][A-Za-z0-9_.]*)\s*(asc|desc)?\s*$/i;
  const orderTerm = (raw) => {
    const m = ORDER.exec(str(raw));
    if (!m) throw bad("Invalid order " + JSON.stringify(str(raw)) + ".");
    return column(m[1]) + (m[2] ? " " + m[2].toUpperCase() : "");
  };
  const whole = (n, what) => {
    const v = Number(n);
    if (!Number.isInteger(v) || v < 0) throw bad(what + " must be a whole number of 0 or more.");
    return v;
  };
  app.recordQuery = (c) => {
    const name = cname(c);
    let where = { sql: "", params: {} };
    let order = [];
    let limit = 0;
    let offset = 0;
    const add = (op, e) => {
      const r = render(e);
      if (r.sql === "") return;
      where = where.sql === ""
        ? { sql: "(" + r.sql + ")", params: r.params }
        : { sql: "(" + where.sql + ") " + op + " (" + r.sql + ")", params: Object.assign({}, where.params, r.params) };
    };
    const args = (extra) => Object.assign({ c: name, where_sql: where.sql, order_sql: order.join(", "), params: where.params, limit, offset }, extra);
    const q = {
      where(e) { where = { sql: "", params: {} }; add("AND", e); return q; },
      andWhere(e) { add("AND", e); return q; },
      orWhere(e) { add("OR", e); return q; },
      orderBy(...terms) { order = terms.map(orderTerm); return q; },
      andOrderBy(...terms) { order.push(...terms.map(orderTerm)); return q; },
      limit(n) { limit = whole(n, "limit"); return q; },
      offset(n) { offset = whole(n, "offset"); return q; },
      all(out) {
        const rows = call("recordQuery", args({})).map(wrap);
        if (Array.isArray(out)) { out.length = 0; out.push(...rows); }
        return rows;
      },
      one(out) {
        const rows = call("recordQuery", args({ limit: 1 }));
        if (!rows.length) throw new errors.NotFoundError();
        if (out instanceof Record) { out.__replace(rows[0]); out.__c = { id: rows[0].collectionId, name: rows[0].collectionName, type: "" }; }
        return wrap(rows[0]);
      },
      count() { return call("recordQuery", args({ count: true })); },
    };
    return q;
  };
  // A filter string (ours, with {:name} params) or $dbx expressions (PocketBase's).
  const filterForm = (exprs) => exprs.length > 0 && typeof exprs[0] === "string";
  app.countRecords = (c, ...exprs) => {
    if (filterForm(exprs)) return call("countRecords", { c: cname(c), filter: exprs[0], params: exprs[1] || {} });
    return exprs.reduce((q, e) => q.andWhere(e), app.recordQuery(c)).count();
  };
  app.findAllRecords = (c, ...exprs) => {
    if (filterForm(exprs)) return call("findAllRecords", { c: cname(c), filter: exprs[0], params: exprs[1] || {} }).map(wrap);
    return exprs.reduce((q, e) => q.andWhere(e), app.recordQuery(c)).all();
  };
  app.findRecordsByIds = (c, ids) => {
    if (!Array.isArray(ids)) throw bad("findRecordsByIds expects an array of ids.");
    return app.recordQuery(c).andWhere(dbx.in("id", ...ids.map(str))).all();
  };
  app.findFirstRecordByData = (c, key, value) => {
    const k = str(key);
    const collection = call("collection", cname(c));
    if (!(collection.fields || []).some((f) => f.name === k)) throw bad("invalid or missing field " + k);
    return app.recordQuery(c).andWhere(dbx.hashExp({ [k]: value })).one();
  };
  app.findAuthRecordByEmail = (c, email) => wrap(call("findAuthRecordByEmail", { c: cname(c), email: str(email) }));
  const expandList = (expands) => (Array.isArray(expands) ? expands : expands == null ? [] : [expands]).map(str).join(",");
  app.expandRecords = (list, expands, fetchFunc) => {
    if (fetchFunc != null) throw bad("expandRecord: a custom fetch function is not supported.");
    const records = (Array.isArray(list) ? list : []).filter((r) => r instanceof Record);
    if (!records.length) return {};
    const out = call("expand", { c: cname(records[0].__c), records: records.map((r) => r.__d), expand: expandList(expands) });
    records.forEach((r, i) => { if (out[i] && out[i].expand !== undefined) r.__d.expand = out[i].expand; });
    return {};
  };
  app.expandRecord = (record, expands, fetchFunc) => app.expandRecords([record], expands, fetchFunc);
  Record.prototype.expandedOne = function (rel) {
    const v = (this.__d.expand || {})[str(rel)];
    const one = Array.isArray(v) ? v[0] : v;
    return one && typeof one === "object" ? wrap(one) : null;
  };
  Record.prototype.expandedAll = function (rel) {
    const v = (this.__d.expand || {})[str(rel)];
    return (Array.isArray(v) ? v : v ? [v] : []).filter((x) => x && typeof x === "object").map(wrap);
  };

  // ---- $mails ------------------------------------------------------------------
  const saved = (record, fn) => {
    if (!(record instanceof Record) || !record.id) throw bad(fn + " expects a saved auth Record.");
    return { c: cname(record.__c), id: record.id };
  };
  G.$mails = {
    sendRecordVerification: (_app, record) => { call("mailVerification", saved(record, "sendRecordVerification")); },
    sendRecordPasswordReset: (_app, record) => { call("mailPasswordReset", saved(record, "sendRecordPasswordReset")); },
    sendRecordChangeEmail: (_app, record, newEmail) => {
      call("mailEmailChange", Object.assign(saved(record, "sendRecordChangeEmail"), { new_email: str(newEmail) }));
    },
    sendRecordOTP: (_app, record, otpId, pass) => {
      call("mailOtp", Object.assign(saved(record, "sendRecordOTP"), { otp_id: str(otpId), pass: str(pass) }));
    },
    sendRecordAuthAlert: (_app, record, info) => {
      call("mailAuthAlert", Object.assign(saved(record, "sendRecordAuthAlert"), { info: str(info) }));
    },
  };

  // ---- $security ---------------------------------------------------------------
  // PocketBase's optional regexp/syntax flags are not supported (Perl syntax always).
  G.$security.randomStringByRegex = (pattern) => call("randomStringByRegex", { pattern: str(pattern) });
  G.$security.parseUnverifiedJWT = (token) => call("parseUnverifiedJWT", { token: str(token) });

  // ---- $apis -------------------------------------------------------------------
  const apis = G.$apis;
  apis.requireSuperuserOrOwnerAuth = (ownerIdParam) => (e) => {
    const param = ownerIdParam == null || ownerIdParam === "" ? "id" : str(ownerIdParam);
    if (!e.auth) throw new errors.UnauthorizedError("The request requires superuser or record authorization token.");
    if (e.auth.isSuperuser()) return e.next();
    const owner = e.request.pathValue(param);
    if (owner === "" || owner !== e.auth.id) {
      throw new errors.ForbiddenError("You are not allowed to perform this request.");
    }
    return e.next();
  };
  apis.bodyLimit = (limit) => (e) => {
    const max = Number(limit);
    const length = Number(e.request.header.get("content-length"));
    if (max > 0 && Number.isFinite(length) && length > max) {
      throw new ApiError(413, "Request entity too large", {});
    }
    return e.next();
  };
  const authRef = (e) => (e && e.auth ? Object.assign({}, e.auth.__d, { collectionId: e.auth.__c.id, collectionName: e.auth.__c.name, id: e.auth.id }) : null);
  apis.enrichRecords = (e, list, ...expands) => {
    const records = (Array.isArray(list) ? list : []);
    if (records.some((r) => !(r instanceof Record) || !r.id)) throw bad("enrichRecords expects saved Records.");
    if (!records.length) return;
    const out = call("enrich", { c: cname(records[0].__c), ids: records.map((r) => r.id), expand: expandList(expands.flat()), auth: authRef(e) });
    records.forEach((r, i) => r.__replace(out[i]));
  };
  apis.enrichRecord = (e, record, ...expands) => apis.enrichRecords(e, [record], ...expands);
  // The answer the REST auth endpoints give: a fresh token and the record
  // as its owner sees it (optionally expanded by the request's ?expand),
  // through the `onRecordAuthRequest` handlers, as PocketBase's.
  apis.recordAuthResponse = (e, record, authMethod, meta) => {
    const ref = saved(record, "recordAuthResponse");
    const info = e.requestInfo();
    const mfaId = str((info.body || {}).mfaId || (info.query || {}).mfaId);
    const issued = call("authToken", Object.assign({ method: str(authMethod), mfa_id: mfaId, ip: e.realIP() }, ref));
    if (issued.mfaId) return e.json(401, { mfaId: issued.mfaId });
    const token = issued.token;
    const owner = { collectionId: record.__c.id || record.get("collectionId"), collectionName: record.__c.name || record.get("collectionName"), id: record.id };
    const expand = (info.query || {}).expand || "";
    const c = { id: owner.collectionId, name: owner.collectionName, type: "auth" };
    const shaped = enrichAuthRecord(e, c, call("enrich", { c: ref.c, ids: [ref.id], expand: str(expand), auth: owner })[0]);
    return authRequest(e, c, shaped, token, meta === undefined ? null : meta, str(authMethod));
  };
})(globalThis);
