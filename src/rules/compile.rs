//! Compiles a parsed filter into SQL. Knows SQL and the [`Scope`] of one
//! request, nothing about HTTP. Every literal becomes a bound parameter;
//! identifiers come only from the `Scope`, which has already checked them
//! against the schema. This file resolves operands (fields, `@request.*`,
//! macros, literals, functions); `operators.rs` writes the comparisons.
//!
//! One joined row per source, as PocketBase: its resolver LEFT JOINs every
//! path step once per query, so all comparisons reading that step see the
//! same joined row, and the query keeps a record when some tuple of joined
//! rows satisfies the whole condition. The unit of sharing is a *step*
//! ([`Scope::shared_steps`]): the rows a multi-valued hop reaches, named by
//! the path up to it (`x_via_y`; `x_via_y.members` is a further step on one
//! `x_via_y` row; `tags:each` is the elements of `tags`; `members:each` and
//! `members.*` are one step), and each `@collection` source. Inside an `&&`,
//! the parts that need a common source are grouped into one `EXISTS` that
//! opens the sources, and every any-of comparison (`?=`, `?!=`, `?~`, …) in
//! the group, however deep under `||`/`&&`, reads the open row; nested steps
//! are grouped again inside it. `(a ?= 1 || b ?= 2) && c ?= 3` over one
//! step thus needs one row with (a = 1 or b = 2) and c = 3, while `||`
//! alone lets each branch find its own row (the existential distributes
//! over `||`). Step rows are LEFT JOINed, so a record without any has one
//! row of NULLs and a comparison alone means what it meant before grouping.
//! An all-of comparison (`=`, `!=` on a multi-valued path) keeps its own
//! subquery over every element (PocketBase's multi-match subquery) and,
//! like PocketBase's, also holds on the shared row; `:length` reads the
//! row, and its all-of form holds for the length of every reached row (the
//! scope's per-row lengths, [`ColumnRef::per_row_lengths`]), never for
//! their total. `@request.body.x:each` is a step too (the submitted
//! list's elements). `@collection` sources are shared between plain
//! comparisons of an `&&` only (not under `||`).

use std::time::SystemTime;

use super::ast::{Expr, Modifier, Op, Operand, Path, PathKind};
use super::error::RuleError;
use super::functions;
use super::macros;
use super::operators::{self, Expansion, Term};
use super::postgres;
use super::scope::{
    ColumnRef, Dialect, EACH_STEP, Nulls, Piece, Scope, SqlFragment, SqlValue, ValueType,
};

/// Settings for one compilation.
#[derive(Debug, Clone, Copy)]
pub struct CompileOptions {
    /// The instant datetime macros (`@now`, `@todayStart`, …) are computed from.
    pub now: SystemTime,
}

impl CompileOptions {
    /// Options with datetime macros pinned to `now`.
    pub fn at(now: SystemTime) -> Self {
        Self { now }
    }
}

impl Default for CompileOptions {
    /// Datetime macros use the current system time.
    fn default() -> Self {
        Self::at(SystemTime::now())
    }
}

/// Compiles `expr` to a SQL boolean expression, with macros at the current time.
pub fn compile(expr: &Expr, scope: &dyn Scope) -> Result<SqlFragment, RuleError> {
    compile_with(expr, scope, &CompileOptions::default())
}

/// Compiles `expr` to a SQL boolean expression with explicit options.
pub fn compile_with(
    expr: &Expr,
    scope: &dyn Scope,
    options: &CompileOptions,
) -> Result<SqlFragment, RuleError> {
    let mut compiler = Compiler {
        scope,
        dialect: scope.dialect(),
        now_ms: macros::unix_millis(options.now),
        aliases: 0,
        open_collections: Vec::new(),
        open_rows: Vec::new(),
        any: false,
    };
    let sql = compiler.expr(expr)?;
    if compiler.dialect == Dialect::Postgres {
        sql.params.iter().try_for_each(postgres::check_text)?;
    }
    Ok(sql)
}

/// A resolved operand: one value, or the JSON list of a multi-valued one
/// (with what a NULL element of it means).
pub(crate) enum Resolved {
    Single(Term),
    Each(SqlFragment, Nulls),
}

struct Compiler<'a> {
    scope: &'a dyn Scope,
    /// The SQL written: the scope's.
    dialect: Dialect,
    now_ms: i64,
    /// Number of `json_each` aliases handed out so far.
    aliases: usize,
    /// `@collection` sources open in the enclosing `EXISTS`: (name, alias) → SQL alias.
    open_collections: Vec<(CollectionKey, String)>,
    /// Shared path steps open in the enclosing `EXISTS`.
    open_rows: Vec<OpenStep>,
    /// The comparison being compiled is an any-of one: its paths read open rows.
    any: bool,
}

/// `@collection.<name>[:alias]`, identified by (name, alias-or-name).
type CollectionKey = (String, String);

/// A shared path step open in an enclosing `EXISTS`: (step, SQL alias of its rows).
type OpenStep = (Vec<String>, String);

/// What an `EXISTS` opens for the comparisons grouped in it.
#[derive(Debug, Clone, PartialEq)]
enum SourceKey {
    /// Another collection (`@collection.<name>[:alias]`).
    Collection(CollectionKey),
    /// The rows of a multi-valued path step ([`Scope::shared_steps`]).
    Rows(Vec<String>),
}

/// The `@collection` keys an operand mentions.
fn collection_keys(operand: &Operand, out: &mut Vec<CollectionKey>) {
    match operand {
        Operand::Identifier(path) if path.kind() == PathKind::Collection => {
            if let Some(name) = path.segments.get(1) {
                let key = (
                    name.clone(),
                    path.alias.clone().unwrap_or_else(|| name.clone()),
                );
                if !out.contains(&key) {
                    out.push(key);
                }
            }
        }
        Operand::Function { args, .. } => args.iter().for_each(|a| collection_keys(a, out)),
        _ => {}
    }
}

/// The step of `@request.body.<key>:each`: PocketBase joins the submitted
/// list once per query too, so any-of comparisons on it inside `&&` read one
/// element.
fn body_each_step(path: &Path) -> Option<Vec<String>> {
    let key = path.request_key()?;
    (path.modifier == Some(Modifier::Each) && key.len() > 1 && key[0] == "body")
        .then(|| [path.segments.as_slice(), &[EACH_STEP.to_owned()]].concat())
}

/// A path that may read a shared row: a field path.
fn shareable(path: &Path) -> bool {
    path.kind() == PathKind::Field
}

impl Compiler<'_> {
    fn expr(&mut self, expr: &Expr) -> Result<SqlFragment, RuleError> {
        match expr {
            Expr::And(parts) => self.join(&parts.iter().collect::<Vec<_>>(), " AND "),
            Expr::Or(parts) => self.join(&parts.iter().collect::<Vec<_>>(), " OR "),
            Expr::Compare { left, op, right } => self.comparison(expr, left, *op, right),
        }
    }

    /// `(a AND b …)`; an empty list is its identity (true for AND, false for OR).
    ///
    /// Inside an AND, parts that need the same source (an `@collection`, or
    /// the rows of a multi-valued path step) share one `EXISTS`, so they must
    /// hold for the same joined row, as PocketBase's single join per query
    /// makes them: parts are grouped by the sources they have in common.
    fn join(&mut self, parts: &[&Expr], glue: &str) -> Result<SqlFragment, RuleError> {
        if parts.is_empty() {
            let and = glue == " AND ";
            return Ok(SqlFragment::raw(match (self.dialect, and) {
                (Dialect::Sqlite, true) => "1",
                (Dialect::Sqlite, false) => "0",
                (Dialect::Postgres, true) => "TRUE",
                (Dialect::Postgres, false) => "FALSE",
            }));
        }
        let mut compiled: Vec<SqlFragment> = Vec::new();
        let mut groups: Vec<(Vec<SourceKey>, Vec<&Expr>)> = Vec::new();
        for part in parts {
            let keys = self.unopened_keys(part);
            if glue != " AND " || keys.is_empty() {
                compiled.push(self.expr(part)?);
                continue;
            }
            // Merge every group sharing a source with this part into one.
            let (mut merged_keys, mut members) = (keys, Vec::new());
            let mut i = 0;
            while i < groups.len() {
                if groups[i].0.iter().any(|k| merged_keys.contains(k)) {
                    let (keys, group) = groups.remove(i);
                    for key in keys {
                        if !merged_keys.contains(&key) {
                            merged_keys.push(key);
                        }
                    }
                    members.extend(group);
                } else {
                    i += 1;
                }
            }
            members.push(*part);
            groups.push((merged_keys, members));
        }
        for (keys, members) in groups {
            compiled.push(self.exists_group(&keys, &members)?);
        }
        let mut out = SqlFragment::raw("(");
        for (i, part) in compiled.iter().enumerate() {
            if i > 0 {
                out.sql.push_str(glue);
            }
            out.push(part);
        }
        out.sql.push(')');
        Ok(out)
    }

    /// Sources `expr` needs that no enclosing `EXISTS` has opened: the
    /// `@collection`s of a comparison, and the next shared path step of
    /// every any-of comparison in it (however deep under `||`/`&&`).
    fn unopened_keys(&self, expr: &Expr) -> Vec<SourceKey> {
        let mut keys = Vec::new();
        if let Expr::Compare { left, right, .. } = expr {
            let mut collections = Vec::new();
            collection_keys(left, &mut collections);
            collection_keys(right, &mut collections);
            collections.retain(|k| !self.open_collections.iter().any(|(open, _)| open == k));
            keys.extend(collections.into_iter().map(SourceKey::Collection));
        }
        self.unopened_rows(expr, &mut keys);
        keys
    }

    fn unopened_rows(&self, expr: &Expr, out: &mut Vec<SourceKey>) {
        match expr {
            Expr::And(parts) | Expr::Or(parts) => {
                parts.iter().for_each(|p| self.unopened_rows(p, out));
            }
            Expr::Compare { left, right, .. } => {
                for operand in [left, right] {
                    let Operand::Identifier(path) = operand else {
                        continue;
                    };
                    if let (_, Some(step)) = self.rows_state(path) {
                        let key = SourceKey::Rows(step);
                        if !out.contains(&key) {
                            out.push(key);
                        }
                    }
                }
            }
        }
    }

    /// The deepest shared step of `path` open here (with its alias) and the
    /// next one not yet open.
    fn rows_state(&self, path: &Path) -> (Option<OpenStep>, Option<Vec<String>>) {
        let steps = match path.kind() {
            PathKind::Field if shareable(path) => self.scope.shared_steps(path),
            PathKind::Request => body_each_step(path).into_iter().collect(),
            _ => Vec::new(),
        };
        let mut deepest = None;
        for step in steps {
            match self.open_rows.iter().find(|(open, _)| *open == step) {
                Some(open) => deepest = Some(open.clone()),
                None => return (deepest, Some(step)),
            }
        }
        (deepest, None)
    }

    /// `EXISTS (SELECT 1 FROM <sources> WHERE <parts> [AND <source conditions>])`.
    /// Path rows are LEFT JOINed: a record without any still has one row of
    /// NULLs, so a part alone means what it means outside the group.
    fn exists_group(
        &mut self,
        keys: &[SourceKey],
        members: &[&Expr],
    ) -> Result<SqlFragment, RuleError> {
        let (opened_collections, opened_rows) = (self.open_collections.len(), self.open_rows.len());
        let result = self.exists_group_inner(keys, members);
        self.open_collections.truncate(opened_collections);
        self.open_rows.truncate(opened_rows);
        result
    }

    fn exists_group_inner(
        &mut self,
        keys: &[SourceKey],
        members: &[&Expr],
    ) -> Result<SqlFragment, RuleError> {
        let mut tables = Vec::new();
        let mut conditions = Vec::new();
        let mut joins = SqlFragment::default();
        for key in keys {
            match key {
                SourceKey::Collection(key) => {
                    self.aliases += 1;
                    let alias = format!("\"_c{}\"", self.aliases);
                    let source = self.scope.collection_source(&key.0, &alias)?;
                    tables.push(source.from);
                    if let Some(condition) = source.condition {
                        conditions.push(condition);
                    }
                    self.open_collections.push((key.clone(), alias));
                }
                SourceKey::Rows(step) if step.first().is_some_and(|s| s == "@request") => {
                    let alias = format!("_e{}", self.aliases + 1);
                    self.aliases += 1;
                    let path = Path {
                        segments: step[..step.len() - 1].to_vec(),
                        alias: None,
                        modifier: Some(Modifier::Each),
                    };
                    let list = request_list(self.dialect, self.scope.request_value(&path)?);
                    let length = operators::json_length(self.dialect, &list);
                    let (no_rows, on) = match self.dialect {
                        Dialect::Sqlite => ("'[]'", "1"),
                        Dialect::Postgres => ("'[]'::jsonb", "TRUE"),
                    };
                    joins.push(&SqlFragment::concat(&[
                        Piece::Raw(" LEFT JOIN "),
                        Piece::Raw(operators::each_function(self.dialect)),
                        Piece::Raw("CASE WHEN "),
                        Piece::Sql(&length),
                        Piece::Raw(" > 0 THEN "),
                        Piece::Sql(&list),
                        Piece::Raw(&format!(" ELSE {no_rows} END) AS {alias} ON {on}")),
                    ]));
                    self.open_rows.push((step.clone(), alias));
                }
                SourceKey::Rows(step) => {
                    // The step's base is the deepest open step it extends.
                    let base = self
                        .open_rows
                        .iter()
                        .filter(|(open, _)| open.len() < step.len() && step.starts_with(open))
                        .max_by_key(|(open, _)| open.len())
                        .map(|(open, alias)| (open.len(), alias.clone()));
                    let rows = self
                        .scope
                        .open_rows(step, base.as_ref().map(|(n, a)| (*n, a.as_str())))?;
                    // The rows as a derived table under their own alias, so that
                    // joins inside the step (`json_each` then the related table)
                    // stay inner joins and only "no row at all" gives NULLs.
                    let alias = &rows.alias;
                    joins
                        .sql
                        .push_str(&format!(" LEFT JOIN (SELECT {alias}.* FROM {}", rows.from));
                    if let Some(condition) = &rows.condition {
                        joins.sql.push_str(" WHERE ");
                        joins.push(condition);
                    }
                    let on = match self.dialect {
                        Dialect::Sqlite => "1",
                        Dialect::Postgres => "TRUE",
                    };
                    joins.sql.push_str(&format!(") AS {alias} ON {on}"));
                    self.open_rows.push((step.clone(), rows.alias));
                }
            }
        }
        let body = self.join(members, " AND ")?;
        if tables.is_empty() {
            tables.push(match self.dialect {
                Dialect::Sqlite => "(SELECT 1)".to_owned(),
                Dialect::Postgres => "(SELECT 1) AS _one".to_owned(),
            });
        }
        let mut out = SqlFragment::raw(format!("EXISTS (SELECT 1 FROM {}", tables.join(", ")));
        out.push(&joins);
        out.sql.push_str(" WHERE ");
        out.push(&body);
        for condition in &conditions {
            out.sql.push_str(" AND (");
            out.push(condition);
            out.sql.push(')');
        }
        out.sql.push(')');
        Ok(out)
    }

    fn comparison(
        &mut self,
        expr: &Expr,
        left: &Operand,
        op: Op,
        right: &Operand,
    ) -> Result<SqlFragment, RuleError> {
        let mut collections = Vec::new();
        collection_keys(left, &mut collections);
        collection_keys(right, &mut collections);
        if !collections.is_empty() && !op.any {
            return Err(RuleError::invalid(
                "compare `@collection` fields with the any-of operators (`?=`, `?!=`, `?~`, …)",
            ));
        }
        let keys = self.unopened_keys(expr);
        if !keys.is_empty() {
            return self.exists_group(&keys, &[expr]);
        }
        let all = self.compare_operands(left, op, right, op.any)?;
        let on_open_row = [left, right].into_iter().any(|operand| {
            matches!(operand, Operand::Identifier(path) if self.rows_state(path).0.is_some())
        });
        if op.any || !on_open_row {
            return Ok(all);
        }
        // An all-of comparison holds for every element, and in PocketBase
        // also for the shared joined row (its multi-match subquery is ANDed
        // onto the plain comparison on that row).
        let row = self.compare_operands(left, Op { any: true, ..op }, right, true)?;
        Ok(SqlFragment::concat(&[
            Piece::Raw("("),
            Piece::Sql(&row),
            Piece::Raw(" AND "),
            Piece::Sql(&all),
            Piece::Raw(")"),
        ]))
    }

    /// `left <op> right` over resolved operands; `read_rows`: paths on an
    /// open shared step read its row.
    fn compare_operands(
        &mut self,
        left: &Operand,
        op: Op,
        right: &Operand,
        read_rows: bool,
    ) -> Result<SqlFragment, RuleError> {
        self.any = read_rows;
        let resolved = self
            .operand(left)
            .and_then(|l| Ok((l, self.operand(right)?)));
        self.any = false;
        let (left, right) = resolved?;
        let mut expansions = Vec::new();
        let left = self.element_of(left, &mut expansions);
        let right = self.element_of(right, &mut expansions);
        if self.dialect == Dialect::Postgres {
            postgres::check_comparable(&left, op.kind, &right)?;
        }
        let condition = operators::compare(self.dialect, &left, op.kind, &right);
        if expansions.is_empty() {
            return Ok(condition);
        }
        Ok(operators::over_elements(
            self.dialect,
            &expansions,
            &condition,
            op.any,
        ))
    }

    /// A single term for `resolved`, registering an expansion for lists.
    fn element_of(&mut self, resolved: Resolved, expansions: &mut Vec<Expansion>) -> Term {
        match resolved {
            Resolved::Single(term) => term,
            Resolved::Each(list, nulls) => {
                self.aliases += 1;
                let expansion = Expansion {
                    alias: format!("_e{}", self.aliases),
                    list,
                    nulls,
                };
                let element = expansion.element(self.dialect);
                expansions.push(expansion);
                element
            }
        }
    }

    fn operand(&mut self, operand: &Operand) -> Result<Resolved, RuleError> {
        match operand {
            Operand::Text(s) => Ok(Resolved::Single(Term::Value(SqlValue::Text(s.clone())))),
            Operand::Number(n) => Ok(Resolved::Single(Term::Value(number(n)?))),
            Operand::Identifier(path) => self.identifier(path),
            Operand::Function { name, args } => {
                let (sql, ty) = self.function(name, args)?;
                Ok(Resolved::Single(Term::expr(sql, ty)))
            }
        }
    }

    fn identifier(&mut self, path: &Path) -> Result<Resolved, RuleError> {
        match path.kind() {
            PathKind::Request if self.any => match self.rows_state(path) {
                // `@request.body.x:each` open in an enclosing `EXISTS`: its element there.
                (Some((_, alias)), _) => Ok(Resolved::Single(Term::expr(
                    operators::element_sql(self.dialect, &alias),
                    ValueType::Element,
                ))),
                _ => self.request(path),
            },
            PathKind::Request => self.request(path),
            PathKind::Macro => macro_operand(path, self.now_ms),
            PathKind::Collection => self.collection_field(path),
            PathKind::Field if self.any && self.rows_state(path).0.is_some() => {
                self.shared_field(path)
            }
            PathKind::Field => match keyword_literal(path) {
                // A real field named `true`/`false`/`null` wins over the literal.
                Some(literal) => match self.scope.column(path) {
                    Ok(column) => column_operand(self.dialect, column, path),
                    Err(_) => Ok(Resolved::Single(Term::Value(literal))),
                },
                None => column_operand(self.dialect, self.scope.column(path)?, path),
            },
        }
    }

    /// A field path read on the row of its deepest shared step open here.
    fn shared_field(&mut self, path: &Path) -> Result<Resolved, RuleError> {
        let (Some((step, alias)), _) = self.rows_state(path) else {
            return column_operand(self.dialect, self.scope.column(path)?, path);
        };
        let each = step.last().is_some_and(|s| s == EACH_STEP);
        let segments = if each {
            Vec::new()
        } else {
            path.segments.get(step.len()..).unwrap_or_default().to_vec()
        };
        // `:each` is spent on the step's rows once nothing of the path is left.
        let modifier = match path.modifier {
            Some(Modifier::Each) if segments.is_empty() => None,
            modifier => modifier,
        };
        let rest = Path {
            segments,
            alias: None,
            modifier,
        };
        let mut column = self.scope.rows_column(&step, &alias, &rest)?;
        // `tags.title:each` expands the titles of every tag; on one tag's
        // row that is its one title.
        if rest.modifier == Some(Modifier::Each) && !column.multi {
            column.multi = true;
            column.expands = false;
            column.sql = match self.dialect {
                Dialect::Sqlite => format!("json_array({})", column.sql),
                Dialect::Postgres => format!("jsonb_build_array({})", column.sql),
            };
        }
        column_operand(self.dialect, column, &rest)
    }

    /// `@collection.<name>[:alias].<field…>` inside its `EXISTS`.
    fn collection_field(&mut self, path: &Path) -> Result<Resolved, RuleError> {
        let (Some(name), Some(_)) = (path.segments.get(1), path.segments.get(2)) else {
            return Err(RuleError::invalid(format!(
                "`{path}` needs a collection and a field"
            )));
        };
        let key = (
            name.clone(),
            path.alias.clone().unwrap_or_else(|| name.clone()),
        );
        let Some((_, alias)) = self.open_collections.iter().find(|(k, _)| *k == key) else {
            return Err(RuleError::invalid(format!(
                "`{path}` is not available here"
            )));
        };
        let field = Path {
            segments: path.segments[2..].to_vec(),
            alias: None,
            modifier: path.modifier,
        };
        let column = self.scope.collection_column(name, alias, &field)?;
        column_operand(self.dialect, column, &field)
    }

    fn request(&mut self, path: &Path) -> Result<Resolved, RuleError> {
        let key = path.request_key().unwrap_or_default();
        if key.is_empty() {
            return Err(RuleError::invalid(
                "`@request` needs a key, e.g. `@request.auth.id`",
            ));
        }
        let is_body = key.len() > 1 && key[0] == "body";
        let nobody = key[0] == "auth" && self.scope.anonymous();
        let value = self.scope.request_value(path)?;
        let single = |v: SqlValue| Ok(Resolved::Single(Term::Value(v)));
        let identity = |v: SqlValue| {
            Ok(Resolved::Single(if nobody {
                Term::Nobody(v)
            } else {
                Term::Value(v)
            }))
        };
        match (path.modifier, value) {
            (None, value) => identity(value.unwrap_or(SqlValue::Null)),
            (Some(Modifier::IsSet), value) => single(SqlValue::Integer(i64::from(value.is_some()))),
            (Some(Modifier::Lower), value) => identity(lowercase(value.unwrap_or(SqlValue::Null))),
            (Some(Modifier::Changed), value) if is_body && key.len() == 2 => {
                self.changed(path, value)
            }
            (Some(Modifier::Each), value) if is_body => Ok(Resolved::Each(
                request_list(self.dialect, value),
                Nulls::Empty,
            )),
            (Some(Modifier::Length), value) if is_body => Ok(Resolved::Single(Term::expr(
                operators::json_length(self.dialect, &request_list(self.dialect, value)),
                ValueType::ComputedNumber,
            ))),
            (Some(modifier), _) => Err(misplaced(modifier, path)),
        }
    }

    /// `@request.body.f:changed`: submitted and different from the stored `f`.
    fn changed(&mut self, path: &Path, value: Option<SqlValue>) -> Result<Resolved, RuleError> {
        let Some(value) = value else {
            return Ok(Resolved::Single(Term::Value(SqlValue::Integer(0))));
        };
        let field = Path {
            segments: path.segments.get(2..).unwrap_or_default().to_vec(),
            alias: None,
            modifier: None,
        };
        let Resolved::Single(stored) =
            column_operand(self.dialect, self.scope.column(&field)?, &field)?
        else {
            return Err(misplaced(Modifier::Changed, path));
        };
        let differs = operators::equality(self.dialect, &Term::Value(value), &stored, true);
        let wrapped = match self.dialect {
            Dialect::Sqlite => {
                SqlFragment::concat(&[Piece::Raw("("), Piece::Sql(&differs), Piece::Raw(")")])
            }
            Dialect::Postgres => postgres::condition_value(&differs),
        };
        Ok(Resolved::Single(Term::expr(
            wrapped,
            ValueType::ComputedNumber,
        )))
    }

    /// A function call and what it returns.
    fn function(
        &mut self,
        name: &str,
        args: &[Operand],
    ) -> Result<(SqlFragment, ValueType), RuleError> {
        let args = args
            .iter()
            .map(|arg| self.scalar_argument(name, arg))
            .collect::<Result<Vec<_>, _>>()?;
        match self.dialect {
            Dialect::Sqlite => {
                let args: Vec<SqlFragment> = args.iter().map(Term::to_sql).collect();
                functions::call(name, &args)
            }
            Dialect::Postgres => postgres::call(name, &args),
        }
    }

    fn scalar_argument(&mut self, function: &str, arg: &Operand) -> Result<Term, RuleError> {
        match self.operand(arg)? {
            Resolved::Single(term) => Ok(term),
            Resolved::Each(..) => Err(RuleError::invalid(format!(
                "`:each` values cannot be passed to `{function}`"
            ))),
        }
    }
}

/// The one place a [`ColumnRef`] from the scope becomes SQL, with its modifier applied.
pub(crate) fn column_operand(
    d: Dialect,
    column: ColumnRef,
    path: &Path,
) -> Result<Resolved, RuleError> {
    let (nulls, ty) = (column.nulls, column.ty);
    let sql = SqlFragment {
        sql: column.sql,
        params: column.params,
    };
    // SQLite's LOWER folds ASCII only, on the value's text (no affinity left).
    let lower = |sql: &SqlFragment| match d {
        Dialect::Sqlite => {
            SqlFragment::concat(&[Piece::Raw("LOWER("), Piece::Sql(sql), Piece::Raw(")")])
        }
        Dialect::Postgres => postgres::lower(&Term::Expr(sql.clone(), nulls, ty)),
    };
    // Lowercasing the JSON text of a list lowercases every element, and
    // ASCII folding leaves JSON syntax intact.
    let lower_list = |sql: &SqlFragment| match d {
        Dialect::Sqlite => lower(sql),
        Dialect::Postgres => SqlFragment::concat(&[
            Piece::Raw("lower("),
            Piece::Sql(sql),
            Piece::Raw("::text COLLATE \"C\")::jsonb"),
        ]),
    };
    let expr = |sql: SqlFragment, ty| Ok(Resolved::Single(Term::Expr(sql, nulls, ty)));
    match (path.modifier, column.multi) {
        // One length per reached row, compared like any expanded list.
        (Some(Modifier::Length), _) if column.per_row_lengths => Ok(Resolved::Each(sql, nulls)),
        (None | Some(Modifier::Each), true) if column.expands => Ok(Resolved::Each(sql, nulls)),
        (Some(Modifier::Lower), true) if column.expands => {
            Ok(Resolved::Each(lower_list(&sql), nulls))
        }
        (None, _) => expr(sql, ty),
        (Some(Modifier::Lower), _) => expr(lower(&sql), ValueType::ComputedText),
        (Some(Modifier::Each), true) => Ok(Resolved::Each(sql, nulls)),
        (Some(Modifier::Length), true) => Ok(Resolved::Single(Term::expr(
            operators::json_length(d, &sql),
            ValueType::ComputedNumber,
        ))),
        (Some(modifier), _) => Err(misplaced(modifier, path)),
    }
}

fn misplaced(modifier: Modifier, path: &Path) -> RuleError {
    let valid_on = match modifier {
        Modifier::IsSet => "`@request.*` keys",
        Modifier::Changed => "`@request.body.<field>`",
        Modifier::Each | Modifier::Length => "multi-valued fields and `@request.body.*`",
        Modifier::Lower => "fields and `@request.*` values",
    };
    RuleError::invalid(format!(
        "`:{}` in `{path}` is only valid on {valid_on}",
        modifier.name()
    ))
}

fn macro_operand(path: &Path, now_ms: i64) -> Result<Resolved, RuleError> {
    if let Some(modifier) = path.modifier {
        return Err(misplaced(modifier, path));
    }
    let name = path.single_name().unwrap_or_default();
    match macros::value(name, now_ms) {
        Some(value) => Ok(Resolved::Single(Term::Value(value))),
        None => Err(RuleError::invalid(format!("unknown macro `{path}`"))),
    }
}

/// `true`, `false` and `null` (any case) as the value they stand for.
fn keyword_literal(path: &Path) -> Option<SqlValue> {
    let name = path.single_name()?;
    if name.eq_ignore_ascii_case("true") {
        Some(SqlValue::Integer(1))
    } else if name.eq_ignore_ascii_case("false") {
        Some(SqlValue::Integer(0))
    } else if name.eq_ignore_ascii_case("null") {
        Some(SqlValue::Null)
    } else {
        None
    }
}

/// A lexer-validated number: an integer when it fits, a float otherwise.
fn number(text: &str) -> Result<SqlValue, RuleError> {
    if !text.contains('.')
        && let Ok(i) = text.parse::<i64>()
    {
        return Ok(SqlValue::Integer(i));
    }
    text.parse::<f64>()
        .map(SqlValue::Real)
        .map_err(|_| RuleError::invalid(format!("invalid number `{text}`")))
}

/// ASCII lowercasing, matching SQLite's `LOWER()` without ICU.
fn lowercase(value: SqlValue) -> SqlValue {
    match value {
        SqlValue::Text(s) => SqlValue::Text(s.to_ascii_lowercase()),
        other => other,
    }
}

/// A submitted value as a JSON list to expand (`?`, bound to the JSON text;
/// on PostgreSQL that text as jsonb, NULL when it is not JSON).
fn request_list(d: Dialect, value: Option<SqlValue>) -> SqlFragment {
    let param = SqlFragment::param(value.unwrap_or(SqlValue::Null));
    match d {
        Dialect::Sqlite => param,
        Dialect::Postgres => SqlFragment::concat(&[
            Piece::Raw("fb_json(CAST("),
            Piece::Sql(&param),
            Piece::Raw(" AS text))"),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::super::parser::parse_filter;
    use super::super::testing::TestScope;
    use super::*;

    /// 2024-02-29 13:45:30.123 UTC.
    const FIXED_NOW_MS: u64 = 1_709_214_330_123;

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.into())
    }

    fn int(i: i64) -> SqlValue {
        SqlValue::Integer(i)
    }

    fn compile_in(src: &str, scope: &TestScope) -> Result<SqlFragment, RuleError> {
        let options = CompileOptions::at(UNIX_EPOCH + Duration::from_millis(FIXED_NOW_MS));
        let expr = parse_filter(src)?;
        compile_with(&expr, scope, &options)
    }

    fn sql_of(src: &str) -> SqlFragment {
        compile_in(src, &TestScope::new()).unwrap_or_else(|e| panic!("{src:?} should compile: {e}"))
    }

    fn check(cases: &[(&str, &str, Vec<SqlValue>, &str)]) {
        for (src, sql, params, why) in cases {
            let got = sql_of(src);
            assert_eq!(got.sql, *sql, "{src:?}: {why}");
            assert_eq!(&got.params, params, "{src:?}: {why} (params)");
        }
    }

    const TITLE: &str = "\"posts\".\"title\"";

    #[test]
    fn every_operator_compiles_to_its_sql() {
        check(&[
            (
                "title = 'a'",
                "\"posts\".\"title\" = ?",
                vec![text("a")],
                "equal",
            ),
            (
                "title != 'a'",
                "\"posts\".\"title\" IS NOT ?",
                vec![text("a")],
                "not equal keeps NULL rows",
            ),
            ("views < 5", "\"posts\".\"views\" < ?", vec![int(5)], "less"),
            (
                "views <= 5",
                "\"posts\".\"views\" <= ?",
                vec![int(5)],
                "less or equal",
            ),
            (
                "views > 5",
                "\"posts\".\"views\" > ?",
                vec![int(5)],
                "greater",
            ),
            (
                "views >= 5",
                "\"posts\".\"views\" >= ?",
                vec![int(5)],
                "greater or equal",
            ),
            (
                "title ~ 'a'",
                "\"posts\".\"title\" LIKE ? ESCAPE '\\'",
                vec![text("%a%")],
                "like",
            ),
            (
                "title !~ 'a'",
                "\"posts\".\"title\" NOT LIKE ? ESCAPE '\\'",
                vec![text("%a%")],
                "not like",
            ),
            (
                "views = '5'",
                "\"posts\".\"views\" = ?",
                vec![text("5")],
                "bare column keeps numeric affinity",
            ),
            (
                "title = id",
                "COALESCE(\"posts\".\"title\", '') = COALESCE(\"posts\".\"id\", '')",
                vec![],
                "two columns",
            ),
            (
                "'a' = title",
                "? = \"posts\".\"title\"",
                vec![text("a")],
                "literal on the left",
            ),
            ("1 < 2", "? < ?", vec![int(1), int(2)], "two literals"),
        ]);
    }

    #[test]
    fn any_forms_on_single_values_match_the_plain_operators() {
        for (plain, any) in [
            ("title = 'a'", "title ?= 'a'"),
            ("title != 'a'", "title ?!= 'a'"),
            ("views < 1", "views ?< 1"),
            ("views <= 1", "views ?<= 1"),
            ("views > 1", "views ?> 1"),
            ("views >= 1", "views ?>= 1"),
            ("title ~ 'a'", "title ?~ 'a'"),
            ("title !~ 'a'", "title ?!~ 'a'"),
            ("cats = 'a'", "cats ?= 'a'"),
        ] {
            assert_eq!(sql_of(any), sql_of(plain), "{any} should equal {plain}");
        }
    }

    #[test]
    fn empty_and_null_compare_alike() {
        check(&[
            (
                "title = ''",
                "(\"posts\".\"title\" = '' OR \"posts\".\"title\" IS NULL)",
                vec![],
                "empty text",
            ),
            (
                "title = null",
                "(\"posts\".\"title\" = '' OR \"posts\".\"title\" IS NULL)",
                vec![],
                "null",
            ),
            (
                "title != NULL",
                "(\"posts\".\"title\" IS NOT '' AND \"posts\".\"title\" IS NOT NULL)",
                vec![],
                "not null, any case",
            ),
            ("'' = null", "'' = ''", vec![], "both empty"),
            (
                "cats = ''",
                "(\"posts\".\"cats\" = '' OR \"posts\".\"cats\" IS NULL)",
                vec![],
                "bare multi field is its JSON text",
            ),
        ]);
    }

    #[test]
    fn keywords_are_literals_unless_a_field_has_that_name() {
        check(&[
            (
                "published = true",
                "\"posts\".\"published\" = ?",
                vec![int(1)],
                "true is 1",
            ),
            (
                "published = FALSE",
                "\"posts\".\"published\" = ?",
                vec![int(0)],
                "false is 0, any case",
            ),
            (
                "published = 'true'",
                "\"posts\".\"published\" = ?",
                vec![text("true")],
                "quoted true is text",
            ),
        ]);
        let scope = TestScope::new().with_field("true");

        let got = compile_in("published = true", &scope).expect("compiles");

        assert_eq!(
            got.sql, "COALESCE(\"posts\".\"published\", '') = COALESCE(\"posts\".\"true\", '')",
            "field wins"
        );
    }

    #[test]
    fn numbers_bind_as_integers_or_reals() {
        check(&[
            (
                "views = -3",
                "\"posts\".\"views\" = ?",
                vec![int(-3)],
                "negative integer",
            ),
            (
                "views = 2.5",
                "\"posts\".\"views\" = ?",
                vec![SqlValue::Real(2.5)],
                "decimal",
            ),
            (
                "views = 99999999999999999999",
                "\"posts\".\"views\" = ?",
                vec![SqlValue::Real(1e20)],
                "too big for i64",
            ),
        ]);
    }

    #[test]
    fn like_escapes_plain_literals_and_wraps_columns() {
        check(&[
            (
                "title ~ '50%'",
                "\"posts\".\"title\" LIKE ? ESCAPE '\\'",
                vec![text("50%")],
                "raw pattern",
            ),
            (
                "title ~ 'a_b'",
                "\"posts\".\"title\" LIKE ? ESCAPE '\\'",
                vec![text("%a\\_b%")],
                "underscore escaped",
            ),
            (
                "title ~ 'a\\b'",
                "\"posts\".\"title\" LIKE ? ESCAPE '\\'",
                vec![text("%a\\\\b%")],
                "backslash escaped",
            ),
            (
                "title ~ 5",
                "\"posts\".\"title\" LIKE ? ESCAPE '\\'",
                vec![text("%5%")],
                "number as text",
            ),
            (
                "title ~ id",
                "\"posts\".\"title\" LIKE ('%' || \"posts\".\"id\" || '%') ESCAPE '\\'",
                vec![],
                "column pattern",
            ),
            (
                "title:lower ~ 'ab'",
                "LOWER(\"posts\".\"title\") LIKE ? ESCAPE '\\'",
                vec![text("%ab%")],
                "lower modifier",
            ),
        ]);
    }

    #[test]
    fn datetime_macros_use_the_fixed_now() {
        check(&[
            (
                "created > @now",
                "\"posts\".\"created\" > ?",
                vec![text("2024-02-29 13:45:30.123Z")],
                "now",
            ),
            (
                "created >= @todayStart",
                "\"posts\".\"created\" >= ?",
                vec![text("2024-02-29 00:00:00.000Z")],
                "today start",
            ),
            (
                "created <= @monthEnd",
                "\"posts\".\"created\" <= ?",
                vec![text("2024-02-29 23:59:59.999Z")],
                "month end",
            ),
            (
                "@weekday = 4",
                "? = ?",
                vec![int(4), int(4)],
                "weekday number",
            ),
            (
                "views = @year",
                "\"posts\".\"views\" = ?",
                vec![int(2024)],
                "year number",
            ),
        ]);
    }

    const CATS_LIST: &str = "CASE WHEN json_array_length(CASE WHEN json_valid(\"posts\".\"cats\") THEN \"posts\".\"cats\" ELSE '[]' END) > 0 THEN \"posts\".\"cats\" ELSE '[null]' END";

    #[test]
    fn each_and_length_expand_multi_valued_fields() {
        let any =
            format!("EXISTS (SELECT 1 FROM json_each({CATS_LIST}) AS _e1 WHERE _e1.value = ?)");
        let all = format!(
            "NOT EXISTS (SELECT 1 FROM json_each({CATS_LIST}) AS _e1 WHERE (_e1.value = ?) IS NOT TRUE)"
        );
        let all_ne = format!(
            "NOT EXISTS (SELECT 1 FROM json_each({CATS_LIST}) AS _e1 WHERE (_e1.value IS NOT ?) IS NOT TRUE)"
        );
        let length = "json_array_length(CASE WHEN json_valid(\"posts\".\"cats\") THEN \"posts\".\"cats\" ELSE '[]' END) > ?";
        check(&[
            ("cats:each ?= 'a'", &any, vec![text("a")], "any element"),
            ("cats:each = 'a'", &all, vec![text("a")], "every element"),
            ("cats:each != 'a'", &all_ne, vec![text("a")], "no element"),
            ("cats:length > 1", length, vec![int(1)], "element count"),
        ]);
    }

    #[test]
    fn two_expansions_get_distinct_aliases() {
        let got = sql_of("cats:each ?= tags:each && cats:each ?~ 'x'");

        assert!(
            got.sql.contains("AS _e1, json_each("),
            "both lists in one FROM: {}",
            got.sql
        );
        assert!(
            got.sql
                .contains("AS _e2 WHERE COALESCE(_e1.value, '') = COALESCE(_e2.value, '')"),
            "{}",
            got.sql
        );
        assert!(
            got.sql.contains("AS _e3 WHERE _e3.value LIKE ?"),
            "{}",
            got.sql
        );
        assert_eq!(got.params, vec![text("%x%")]);
    }

    #[test]
    fn request_values_are_bound_not_inlined() {
        let scope = TestScope::new()
            .with_request("auth.id", text("USER1"))
            .with_request("body.title", text("Hello"))
            .with_request("body.tags", text("[\"a\",\"b\"]"))
            .with_request("method", text("GET"));
        let cases = [
            (
                "id = @request.auth.id",
                "\"posts\".\"id\" = ?",
                vec![text("USER1")],
                "auth id",
            ),
            (
                "@request.auth.id != ''",
                "? IS NOT ''",
                vec![text("USER1")],
                "signed in",
            ),
            (
                "@request.query.missing = ''",
                "'' = ''",
                vec![],
                "missing key is NULL",
            ),
            (
                "@request.body.title:isset = true",
                "? = ?",
                vec![int(1), int(1)],
                "isset",
            ),
            (
                "@request.body.owner:isset = false",
                "? = ?",
                vec![int(0), int(0)],
                "not set",
            ),
            (
                "@request.method:lower = 'get'",
                "? = ?",
                vec![text("get"), text("get")],
                "lower",
            ),
            (
                "@request.body.title:changed = true",
                "(? IS NOT \"posts\".\"title\") = ?",
                vec![text("Hello"), int(1)],
                "changed",
            ),
            (
                "@request.body.owner:changed = false",
                "? = ?",
                vec![int(0), int(0)],
                "not submitted is unchanged",
            ),
            (
                "@request.body.tags:length < 3",
                "json_array_length(CASE WHEN json_valid(?) THEN ? ELSE '[]' END) < ?",
                vec![text("[\"a\",\"b\"]"), text("[\"a\",\"b\"]"), int(3)],
                "body length",
            ),
        ];
        for (src, sql, params, why) in cases {
            let got = compile_in(src, &scope).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(got.sql, sql, "{src}: {why}");
            assert_eq!(got.params, params, "{src}: {why} (params)");
        }
    }

    #[test]
    fn request_body_each_binds_the_list_in_placeholder_order() {
        let scope = TestScope::new().with_request("body.tags", text("[\"a\"]"));

        let got = compile_in("@request.body.tags:each ?= 'a'", &scope).expect("compiles");

        assert!(
            got.sql.starts_with(
                "EXISTS (SELECT 1 FROM (SELECT 1) LEFT JOIN json_each(CASE WHEN json_array_length("
            ),
            "{}",
            got.sql
        );
        assert_eq!(
            got.sql.matches('?').count(),
            got.params.len(),
            "one param per placeholder"
        );
        assert_eq!(
            got.params.last(),
            Some(&text("a")),
            "the compared value comes last"
        );
    }

    #[test]
    fn functions_compile_with_bound_arguments() {
        check(&[
            (
                "strftime('%Y-%m', created) = '2024-01'",
                "COALESCE(strftime(?, \"posts\".\"created\"), '') = ?",
                vec![text("%Y-%m"), text("2024-01")],
                "strftime",
            ),
            (
                "geoDistance(lon, 1, 2, 3) < 10",
                "fb_geo_distance(\"posts\".\"lon\", ?, ?, ?) < ?",
                vec![int(1), int(2), int(3), int(10)],
                "geoDistance",
            ),
        ]);
    }

    #[test]
    fn groups_keep_precedence_and_param_order() {
        check(&[(
            "title = 'a' && views = 2 || (id = 'c' && views > 3)",
            "((\"posts\".\"title\" = ? AND \"posts\".\"views\" = ?) OR (\"posts\".\"id\" = ? AND \"posts\".\"views\" > ?))",
            vec![text("a"), int(2), text("c"), int(3)],
            "and inside or",
        )]);
    }

    #[test]
    fn unresolvable_operands_are_errors() {
        let cases = [
            ("nope = 1", "unknown field"),
            (
                "author.name = 'x'",
                "relation paths are the scope's to refuse",
            ),
            ("comments_via_post.text = 'x'", "back-relations likewise"),
            ("@collection.users.id ?= id", "collection joins likewise"),
            ("@later > created", "unknown macro"),
            ("@now:lower = 'x'", "macro with modifier"),
            ("@request = 1", "bare request"),
            ("title:each = 'a'", "each on a single field"),
            ("title:length > 1", "length on a single field"),
            ("title:isset = true", "isset on a field"),
            (
                "@request.auth.id:each = 'a'",
                "each on a non-body request value",
            ),
            (
                "@request.body.a.b:changed = true",
                "changed needs a single body key",
            ),
            ("nope(1) = 1", "unknown function"),
            ("geoDistance(1, 2) = 1", "wrong arity"),
            ("strftime('%Y', cats:each) = '1'", "each inside a function"),
        ];
        for (src, why) in cases {
            let result = compile_in(src, &TestScope::new());
            assert!(
                result.is_err(),
                "{src:?} ({why}) should fail, got {result:?}"
            );
        }
    }

    /// Removes what may legitimately appear in SQL text: scope identifiers and
    /// the compiler's own fixed literals. Anything left must be free of quotes.
    fn strip_trusted(sql: &str) -> String {
        let mut rest = sql.to_string();
        for trusted in [
            "\"posts\".\"title\"",
            "\"posts\".\"views\"",
            "\"posts\".\"id\"",
            "'[null]'",
            "'[]'",
            "'%'",
            "'\\'",
            "''",
        ] {
            rest = rest.replace(trusted, "");
        }
        rest
    }

    #[test]
    fn injection_attempts_never_reach_the_sql_text() {
        // (filter, compiles?, why) — rejected filters are safe too, but most
        // of these are valid text literals and must come out as parameters.
        let cases = [
            ("title = 'x' || 1=1 --", false, "or-true with comment"),
            (
                "title = 'x'' OR 1=1 --'",
                false,
                "doubled quote is two texts",
            ),
            (
                "title = '\\'; DROP TABLE x; --'",
                true,
                "escaped quote then statement",
            ),
            (
                "title = \"'; DROP TABLE x; --\"",
                true,
                "single quotes inside double-quoted text",
            ),
            (
                "title ~ '%' && views = 'abc) OR (1=1'",
                true,
                "parentheses in text",
            ),
            (
                "title != \"\\\" OR \\\"1\\\"=\\\"1\"",
                true,
                "double quote escapes",
            ),
            (
                "title = 'x' // '; DROP TABLE x",
                true,
                "payload in a comment",
            ),
        ];
        for (src, compiles, why) in cases {
            let result = compile_in(src, &TestScope::new());
            assert_eq!(result.is_ok(), compiles, "{src:?} ({why}): {result:?}");
            let Ok(got) = result else { continue };
            let rest = strip_trusted(&got.sql);
            for leak in ["'", "\"", ";", "--", "1=1", "DROP", "OR (", "x"] {
                assert!(
                    !rest.contains(leak),
                    "{src:?} ({why}): {leak:?} leaked into {:?}",
                    got.sql
                );
            }
            assert_eq!(
                got.sql.matches('?').count(),
                got.params.len(),
                "{src:?}: one param per placeholder"
            );
        }
    }

    #[test]
    fn injected_text_arrives_as_one_parameter() {
        let got = sql_of("title = \"'; DROP TABLE x; --\"");

        assert_eq!(got.sql, format!("{TITLE} = ?"));
        assert_eq!(got.params, vec![text("'; DROP TABLE x; --")]);
    }

    #[test]
    fn injection_through_identifiers_fails_to_parse() {
        for src in [
            "title; DROP TABLE x = 1",
            "ti\"tle = 1",
            "title--x = 1",
            "ti`tle = 1",
            "title/**/ = 1",
        ] {
            let parsed = parse_filter(src);
            let compiled = parsed.and_then(|e| compile(&e, &TestScope::new()));
            assert!(compiled.is_err(), "{src:?} should be rejected");
        }
    }

    #[test]
    fn quoted_names_are_text_not_identifiers() {
        let got = sql_of("\"title\" = 1");

        assert_eq!(got.sql, "? = ?", "a double-quoted name is a text literal");
        assert_eq!(got.params, vec![text("title"), int(1)]);
    }

    /// `posts` with a multi-valued step `l` (rows `"links"`), and under it
    /// a further step `l.m`: `l.<f>` and `l.m.<f>` name fields of those rows.
    struct StepScope;

    impl Scope for StepScope {
        fn column(&self, path: &Path) -> Result<ColumnRef, RuleError> {
            Ok(ColumnRef::each(format!(
                "(SELECT json_group_array(x) FROM \"{}\")",
                path.segments.join("_")
            )))
        }

        fn request_value(&self, _path: &Path) -> Result<Option<SqlValue>, RuleError> {
            Ok(None)
        }

        fn shared_steps(&self, path: &Path) -> Vec<Vec<String>> {
            let steps = [vec!["l".to_owned()], vec!["l".to_owned(), "m".to_owned()]];
            steps
                .into_iter()
                .filter(|s| path.segments.len() > s.len() && path.segments.starts_with(s))
                .collect()
        }

        fn open_rows(
            &self,
            key: &[String],
            base: Option<(usize, &str)>,
        ) -> Result<super::super::scope::RowsSource, RuleError> {
            let alias = format!("\"_{}\"", key.join("_"));
            let link = match base {
                Some((_, base)) => format!("{alias}.\"up\" = {base}.\"id\""),
                None => format!("{alias}.\"post\" = \"posts\".\"id\""),
            };
            Ok(super::super::scope::RowsSource {
                from: format!("\"{}\" AS {alias}", key.join("_")),
                condition: Some(SqlFragment::concat(&[
                    Piece::Raw(&link),
                    Piece::Raw(" AND "),
                    Piece::Sql(&SqlFragment::param(text("rule"))),
                ])),
                alias,
            })
        }

        fn rows_column(
            &self,
            _key: &[String],
            alias: &str,
            rest: &Path,
        ) -> Result<ColumnRef, RuleError> {
            let sql = format!("{alias}.\"{}\"", rest.segments.join("_"));
            let column = if rest.modifier == Some(Modifier::Length) {
                ColumnRef::multi(sql)
            } else {
                ColumnRef::single(sql)
            };
            Ok(column.with_nulls(Nulls::Absent))
        }
    }

    #[test]
    fn any_of_comparisons_inside_and_share_the_rows_of_their_step() {
        let one_row = "EXISTS (SELECT 1 FROM (SELECT 1) LEFT JOIN (SELECT \"_l\".* FROM \"l\" AS \"_l\" WHERE \"_l\".\"post\" = \"posts\".\"id\" AND ?) AS \"_l\" ON 1 WHERE ";
        for (src, opened, shared_reads, why) in [
            ("l.a ?= 1 && l.b ?= 2", 1, 2, "one row for both"),
            (
                "l.a ?= 1 || l.b ?= 2",
                2,
                2,
                "|| lets each branch open its own",
            ),
            (
                "(l.a ?= 1 || l.b ?= 2) && l.c ?= 3",
                1,
                3,
                "|| under && reads the && row",
            ),
            (
                "l.a = 1 && l.b ?= 2",
                1,
                2,
                "all-of: its own subquery, and the row",
            ),
            ("l.a = 1", 1, 1, "all-of alone: the row and every element"),
            (
                "l.a ?= 1 && title = 'x'",
                1,
                1,
                "a plain part stays outside",
            ),
            (
                "l.m.c ?= 1 && l.m.d ?= 2 && l.a ?= 3",
                2,
                3,
                "l.m opened once, on the l row",
            ),
            (
                "l.a:length ?> 1 && l.b ?= 2",
                1,
                3,
                ":length on the row (a read twice)",
            ),
        ] {
            let got = compile(&parse_filter(src).expect("parses"), &StepScope)
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            let reads: usize = ["a", "b", "c", "d"]
                .iter()
                .map(|f| {
                    got.sql.matches(&format!("\"_l\".\"{f}\"")).count()
                        + got.sql.matches(&format!("\"_l_m\".\"{f}\"")).count()
                })
                .sum();
            assert_eq!(
                got.sql.matches("LEFT JOIN").count(),
                opened,
                "{src}: {why}: {}",
                got.sql
            );
            assert_eq!(reads, shared_reads, "{src}: {why}: {}", got.sql);
            assert!(got.sql.contains(one_row), "{src}: {}", got.sql);
            assert_eq!(
                got.sql.matches('?').count(),
                got.params.len(),
                "{src}: params"
            );
        }
    }

    /// Evaluates `src` on SQLite with `@request.body.tags` set to `tags`.
    fn holds_with_body_tags(src: &str, tags: Option<&'static str>) -> bool {
        let mut scope = TestScope::new();
        if let Some(tags) = tags {
            scope = scope.with_request("body.tags", text(tags));
        }
        let got = compile_in(src, &scope).unwrap_or_else(|e| panic!("{src}: {e}"));
        let params = got.params.iter().map(|v| match v {
            SqlValue::Text(t) => rusqlite::types::Value::Text(t.clone()),
            SqlValue::Integer(i) => rusqlite::types::Value::Integer(*i),
            SqlValue::Real(r) => rusqlite::types::Value::Real(*r),
            SqlValue::Null => rusqlite::types::Value::Null,
        });
        let conn = rusqlite::Connection::open_in_memory().expect("db");
        let sql = format!("SELECT COALESCE(({}), 0)", got.sql);
        conn.query_row(&sql, rusqlite::params_from_iter(params), |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn body_each_comparisons_inside_and_read_one_submitted_element() {
        let ab = Some(r#"["a","b"]"#);
        for (src, tags, want, why) in [
            (
                "@request.body.tags:each ?= 'a' && @request.body.tags:each ?= 'b'",
                ab,
                false,
                "no element is both",
            ),
            (
                "@request.body.tags:each ?= 'a' || @request.body.tags:each ?= 'b'",
                ab,
                true,
                "|| is per branch",
            ),
            (
                "@request.body.tags:each ?= 'a' && @request.body.tags:each ?!= 'a'",
                ab,
                false,
                "one element",
            ),
            (
                "@request.body.tags:each ?= 'a' && @request.body.tags:each ?!= 'b'",
                ab,
                true,
                "the a is not b",
            ),
            (
                "@request.body.tags:each ?= 'a' && 'x' = 'y'",
                ab,
                false,
                "a plain part still counts",
            ),
            (
                "@request.body.tags:each = 'a' && @request.body.tags:each ?= 'b'",
                ab,
                false,
                "all-of alone",
            ),
            (
                "@request.body.tags:each ?!= 'a'",
                Some("[]"),
                true,
                "an empty list has one empty element, as before",
            ),
            (
                "@request.body.tags:each ?!= 'a' && @request.body.tags:each ?= ''",
                None,
                true,
                "nothing submitted: likewise",
            ),
        ] {
            assert_eq!(
                holds_with_body_tags(src, tags),
                want,
                "{src} with {tags:?}: {why}"
            );
        }
    }

    #[test]
    fn empty_boolean_nodes_compile_to_their_identity() {
        let scope = TestScope::new();

        assert_eq!(
            compile(&Expr::And(Vec::new()), &scope).map(|f| f.sql),
            Ok("1".into())
        );
        assert_eq!(
            compile(&Expr::Or(Vec::new()), &scope).map(|f| f.sql),
            Ok("0".into())
        );
    }
}
