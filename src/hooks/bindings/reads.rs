//! The host side of `$app`'s read helpers beyond the basic finders:
//! `settings()`, `isDev()`, `countRecords` / `findAllRecords` (with a filter
//! string, read through the list action, or with `$dbx` expressions, read
//! through [`record_query`]), `expandRecord` and `recordQuery(...).all()`.
//! All of them read as the superuser (no rules), as PocketBase's do, and
//! every value is bound: the only SQL text a hook adds is what its author
//! wrote in `$dbx.exp` (the same trust as `newQuery`) or names the prelude
//! has checked and quoted.

use super::{Invocation, wait};
use crate::db::Conn;
use crate::hooks::HookError;
use crate::records::{self, Caller, ListQuery, MAX_PER_PAGE, RecordError};
use crate::rules::SqlValue;
use crate::schema::CompiledCollection;
use rquickjs::Ctx;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Most records `findAllRecords` and `recordQuery(...).all()` answer; past
/// it they refuse (a hook that wants more pages with a limit and offset).
pub const MAX_ALL_RECORDS: usize = super::query::MAX_QUERY_ROWS;

#[derive(Deserialize)]
struct ByFilter {
    c: String,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    params: Map<String, Value>,
}

#[derive(Deserialize)]
struct ExpandArgs {
    c: String,
    records: Vec<Value>,
    expand: String,
}

/// A `recordQuery` as the prelude built it: `where_sql` and `order_sql`
/// carry `{:name}` placeholders only; their names were checked and quoted.
#[derive(Deserialize)]
struct QueryArgs {
    c: String,
    #[serde(default)]
    where_sql: String,
    #[serde(default)]
    order_sql: String,
    #[serde(default)]
    params: Map<String, Value>,
    #[serde(default)]
    limit: i64,
    #[serde(default)]
    offset: i64,
    #[serde(default)]
    count: bool,
}

fn parse<T: for<'de> Deserialize<'de>>(args: Value) -> Result<T, HookError> {
    serde_json::from_value(args)
        .map_err(|e| HookError::bad_request(format!("Invalid arguments: {e}")))
}

/// Runs one of this module's operations; `None` for any other op.
pub(super) fn run(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    op: &str,
    args: Value,
) -> Option<Result<Value, HookError>> {
    let out = match op {
        "settings" => settings(inv),
        "isDev" => Ok(json!(inv.host.dev)),
        // Which SQL `$dbx` renders: `[col]` and LIKE for SQLite, `"col"` and
        // an ASCII-folding ILIKE (SQLite's LIKE) for PostgreSQL.
        "dialect" => Ok(json!(match inv.host.db.dialect() {
            crate::rules::Dialect::Sqlite => "sqlite",
            crate::rules::Dialect::Postgres => "postgres",
        })),
        "countRecords" => parse(args).and_then(|a| count(ctx, inv, a)),
        "findAllRecords" => parse(args).and_then(|a| find_all(ctx, inv, a)),
        "expand" => parse(args).and_then(|a| expand(ctx, inv, a)),
        "recordQuery" => parse(args).and_then(|a| record_query(ctx, inv, a)),
        "findAuthRecordByEmail" => parse(args).and_then(|a| by_email(ctx, inv, a)),
        "enrich" => parse(args).and_then(|a| enrich(ctx, inv, a)),
        _ => return None,
    };
    Some(out)
}

fn collection(inv: &Invocation, name: &str) -> Result<Arc<CompiledCollection>, HookError> {
    inv.host
        .registry
        .get(name)
        .ok_or_else(|| HookError::not_found("Missing collection context."))
}

/// The settings as the settings API shows them to a superuser, secrets
/// (SMTP password, S3 secrets) blanked: a hook has no use for them that
/// the mail client and `$mails` do not already cover.
fn settings(inv: &Invocation) -> Result<Value, HookError> {
    let settings = inv
        .host
        .settings
        .get()
        .and_then(|read| read())
        .ok_or_else(|| HookError::bad_request("The settings are not loaded yet."))?;
    let mut public = settings.to_public_json();
    // The blanked secrets stay as "" (PocketBase's objects always have
    // them), so `s.smtp.password.length` works in a hook.
    for pointer in ["/smtp", "/s3", "/backups/s3"] {
        let key = if pointer == "/smtp" {
            "password"
        } else {
            "secret"
        };
        if let Some(Value::Object(section)) = public.pointer_mut(pointer) {
            section.entry(key).or_insert_with(|| json!(""));
        }
    }
    Ok(public)
}

fn list_page(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    collection: Arc<CompiledCollection>,
    query: ListQuery,
    params: &Map<String, Value>,
) -> Result<records::ListPage, HookError> {
    let host = &inv.host;
    let snapshot = host.registry.snapshot();
    wait(
        ctx,
        inv,
        records::list_with_params(
            &host.db,
            snapshot,
            collection,
            Caller::superuser(),
            query,
            params,
        ),
    )
    .map_err(host.map_error)
}

fn count(ctx: &Ctx<'_>, inv: &Invocation, args: ByFilter) -> Result<Value, HookError> {
    let collection = collection(inv, &args.c)?;
    let query = ListQuery {
        page: 1,
        per_page: 1,
        sort: String::new(),
        filter: args.filter,
        skip_total: false,
    };
    let page = list_page(ctx, inv, collection, query, &args.params)?;
    Ok(json!(page.total_items.max(0)))
}

fn find_all(ctx: &Ctx<'_>, inv: &Invocation, args: ByFilter) -> Result<Value, HookError> {
    let collection = collection(inv, &args.c)?;
    let mut out: Vec<Value> = Vec::new();
    for page in 1.. {
        let query = ListQuery {
            page,
            per_page: MAX_PER_PAGE,
            sort: args.sort.clone(),
            filter: args.filter.clone(),
            skip_total: true,
        };
        let items = list_page(ctx, inv, collection.clone(), query, &args.params)?.items;
        let last = items.len() < usize::try_from(MAX_PER_PAGE).unwrap_or(usize::MAX);
        out.extend(items);
        if out.len() > MAX_ALL_RECORDS {
            return Err(too_many());
        }
        if last {
            break;
        }
    }
    Ok(Value::Array(out))
}

fn too_many() -> HookError {
    HookError::bad_request(format!(
        "More than {MAX_ALL_RECORDS} records match; read them in pages (limit and offset)."
    ))
}

fn expand(ctx: &Ctx<'_>, inv: &Invocation, args: ExpandArgs) -> Result<Value, HookError> {
    let collection = collection(inv, &args.c)?;
    let Some(tree) = records::ExpandTree::parse(&args.expand) else {
        return Ok(Value::Array(args.records));
    };
    let host = &inv.host;
    let expanded = wait(
        ctx,
        inv,
        records::expand(
            &host.db,
            host.registry.snapshot(),
            collection,
            Caller::superuser(),
            args.records,
            tree,
        ),
    )
    .map_err(host.map_error)?;
    Ok(Value::Array(expanded))
}

/// `$app.recordQuery(c)...all()/one()/count`: the collection's own SELECT
/// with the hook's WHERE and ORDER BY, on a reader (a statement that would
/// write is refused), rows serialised as the superuser sees them.
fn record_query(ctx: &Ctx<'_>, inv: &Invocation, args: QueryArgs) -> Result<Value, HookError> {
    let collection = collection(inv, &args.c)?;
    let table = crate::db::ident(collection.name.as_str());
    let filter = if args.where_sql.trim().is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", args.where_sql)
    };
    let max = i64::try_from(MAX_ALL_RECORDS).unwrap_or(i64::MAX);
    let limit = if args.limit <= 0 {
        max + 1
    } else {
        args.limit.min(max + 1)
    };
    let sql = if args.count {
        format!("SELECT count(*) FROM {table}{filter}")
    } else {
        let order = if args.order_sql.trim().is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", args.order_sql)
        };
        format!(
            "{}{filter}{order} LIMIT {limit} OFFSET {}",
            collection.select_sql,
            args.offset.max(0)
        )
    };
    let db = inv.host.db.clone();
    let prepared = super::query::prepare_read(&sql, &args.params, db.dialect())?;
    let count = args.count;
    let rows: Result<Value, RecordError> = wait(ctx, inv, async move {
        prepared
            .rows(&db, move |row| {
                if count {
                    return row
                        .into_iter()
                        .next()
                        .map_or(json!(0), super::query::cell_json);
                }
                let values = records::cells_values(&collection, row);
                records::serialize(&collection, &values, &Caller::superuser())
            })
            .await
    });
    let rows = rows.map_err(inv.host.map_error)?;
    if rows.as_array().is_some_and(|r| r.len() > MAX_ALL_RECORDS) {
        return Err(too_many());
    }
    if count {
        return Ok(rows.get(0).cloned().unwrap_or(json!(0)));
    }
    Ok(rows)
}

#[derive(Deserialize)]
struct ByEmail {
    c: String,
    email: String,
}

/// `findAuthRecordByEmail`: compared as the email's unique index compares
/// (case-insensitively when it is `COLLATE NOCASE`), as logins compare.
fn by_email(ctx: &Ctx<'_>, inv: &Invocation, args: ByEmail) -> Result<Value, HookError> {
    let collection = collection(inv, &args.c)?;
    if collection.kind != crate::schema::CollectionType::Auth {
        return Err(HookError::bad_request(format!(
            "{:?} is not an auth collection.",
            collection.name.as_str()
        )));
    }
    let host = &inv.host;
    let sql = format!(
        "SELECT id FROM {} WHERE {} LIMIT 1",
        crate::db::ident(collection.name.as_str()),
        crate::auth::identity_match_in(&collection, "email", host.db.dialect())
    );
    let (db, email) = (host.db.clone(), args.email);
    let found: Result<Value, RecordError> = wait(ctx, inv, async move {
        if email.contains('\0') {
            // PostgreSQL text cannot hold NUL: no stored address has one.
            return Err(RecordError::NotFound);
        }
        let row = db
            .read_conn(move |conn: &mut dyn Conn| {
                conn.first_row(&sql, &[SqlValue::Text(email)])
                    .map_err(RecordError::from)
            })
            .await?;
        let id = match row.and_then(|r| r.into_iter().next()) {
            Some(SqlValue::Text(id)) => id,
            _ => return Err(RecordError::NotFound),
        };
        records::view_as_owner(&db, collection, Caller::superuser(), id).await
    });
    found.map_err(host.map_error)
}

/// The request's authenticated record, as the event carries it.
#[derive(Deserialize)]
struct AuthRef {
    #[serde(rename = "collectionId")]
    collection_id: String,
    #[serde(rename = "collectionName")]
    collection_name: String,
    id: String,
    #[serde(flatten)]
    fields: Map<String, Value>,
}

#[derive(Deserialize)]
struct EnrichArgs {
    c: String,
    ids: Vec<String>,
    #[serde(default)]
    expand: String,
    #[serde(default)]
    auth: Option<AuthRef>,
}

/// Most records one `enrichRecords` call shapes.
const MAX_ENRICH: usize = MAX_PER_PAGE as usize;

/// `$apis.enrichRecord(s)`: the records as the request's caller may see
/// them (hidden fields and a private email removed; expansions only
/// through the view rules of the related collections), not as the
/// superuser the hook reads as.
fn enrich(ctx: &Ctx<'_>, inv: &Invocation, args: EnrichArgs) -> Result<Value, HookError> {
    let collection = collection(inv, &args.c)?;
    if args.ids.len() > MAX_ENRICH {
        return Err(HookError::bad_request(format!(
            "At most {MAX_ENRICH} records can be enriched at once."
        )));
    }
    let caller = match args.auth {
        None => Caller::default(),
        Some(a) => Caller {
            superuser: a.collection_name == "_superusers",
            auth: Some((a.collection_id, a.collection_name, a.id)),
            auth_fields: a.fields,
            ..Caller::default()
        },
    };
    let caller = Caller {
        method: "GET".into(),
        context: "default",
        ..caller
    };
    let host = &inv.host;
    let (db, snapshot) = (host.db.clone(), host.registry.snapshot());
    let tree = records::ExpandTree::parse(&args.expand);
    let shaped: Result<Vec<Value>, RecordError> = wait(ctx, inv, async move {
        let mut out = Vec::with_capacity(args.ids.len());
        for id in args.ids {
            out.push(records::view_as_owner(&db, collection.clone(), caller.clone(), id).await?);
        }
        match tree {
            Some(tree) => records::expand(&db, snapshot, collection, caller, out, tree).await,
            None => Ok(out),
        }
    });
    shaped.map(Value::Array).map_err(host.map_error)
}
