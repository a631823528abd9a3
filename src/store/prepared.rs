//! Statements written out in SQL, for the ones on hot paths.
//!
//! diesel prepares its own UPDATE statements afresh at every call (a changeset may skip
//! `None` fields, so it never trusts the SQL to repeat) and refuses to cache them even when
//! asked, so a hot path would parse and plan the same statement at every request. A
//! [`Prepared`] statement has one SQL text, fixed by its
//! type, so each connection prepares it once and reuses it; the values are still bound
//! parameters, never spliced into the text.
//!
//! Build one with [`prepared!`]: SQL fragments, then the values that go between them.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::expression::AsExpression;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::result::QueryResult;
use diesel::sql_types::Untyped;

/// A statement of fixed SQL text; `S` is a type unique to the call site (the cache key).
pub struct Prepared<S, B> {
    parts: &'static [&'static str],
    binds: B,
    statement: PhantomData<S>,
}

impl<S, B> Prepared<S, B> {
    pub fn new(parts: &'static [&'static str], binds: B) -> Self {
        Prepared {
            parts,
            binds,
            statement: PhantomData,
        }
    }
}

/// A value bound as a parameter of SQL type `ST`.
pub fn bind<ST, T>(value: T) -> T::Expression
where
    T: AsExpression<ST>,
    ST: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType,
{
    value.as_expression()
}

/// The bound values of a statement, each walked after its SQL fragment: a list of any
/// length, built by [`prepared!`] as nested pairs `(a, (b, (c, ())))`.
pub trait Binds<DB: Backend> {
    fn walk_between<'b>(
        &'b self,
        parts: &mut std::slice::Iter<'static, &'static str>,
        out: AstPass<'_, 'b, DB>,
    ) -> QueryResult<()>;
}

/// The end of the list: the fragments left (at most one, checked by [`prepared!`]).
impl<DB: Backend> Binds<DB> for () {
    fn walk_between<'b>(
        &'b self,
        parts: &mut std::slice::Iter<'static, &'static str>,
        mut out: AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        for rest in parts {
            out.push_sql(rest);
        }
        Ok(())
    }
}

impl<DB: Backend, H: QueryFragment<DB>, T: Binds<DB>> Binds<DB> for (H, T) {
    fn walk_between<'b>(
        &'b self,
        parts: &mut std::slice::Iter<'static, &'static str>,
        mut out: AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_sql(parts.next().copied().unwrap_or_default());
        self.0.walk_ast(out.reborrow())?;
        self.1.walk_between(parts, out)
    }
}

impl<S, B, DB> QueryFragment<DB> for Prepared<S, B>
where
    DB: Backend,
    B: Binds<DB>,
{
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.binds.walk_between(&mut self.parts.iter(), out)
    }
}

impl<S: 'static, B> QueryId for Prepared<S, B> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S, B, Conn> RunQueryDsl<Conn> for Prepared<S, B> {}

/// Rows come back by column name, into a `QueryableByName` type (as with `sql_query`).
impl<S, B> Query for Prepared<S, B> {
    type SqlType = Untyped;
}

/// `prepared!["UPDATE t SET a = ", " WHERE id = ", " AND b = ", ""; bind::<Text, _>(a),
/// bind::<Text, _>(id), bind::<BigInt, _>(b)]`:
/// fragments and values alternate, fragment first, and the statement may end with one more
/// fragment; any other count of fragments is a compile-time error, so a value cannot slip
/// into the wrong place. Each use is its own statement type.
macro_rules! prepared {
    [$($part:literal),+ ; $($value:expr),+ $(,)?] => {{
        struct Statement;
        const FRAGMENTS: usize = [$($part),+].len();
        const VALUES: usize = [$(stringify!($value)),+].len();
        const _: () = assert!(
            FRAGMENTS == VALUES || FRAGMENTS == VALUES + 1,
            "a prepared statement has one SQL fragment before each value, and at most one after the last"
        );
        $crate::store::prepared::Prepared::<Statement, _>::new(
            &[$($part),+],
            $crate::store::prepared::binds!($($value),+),
        )
    }};
}

/// The values of [`prepared!`] as the nested pairs [`Binds`] walks.
macro_rules! binds {
    () => { () };
    ($head:expr $(, $tail:expr)*) => { ($head, $crate::store::prepared::binds!($($tail),*)) };
}
pub(crate) use binds;

pub(crate) use prepared;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::connection::InstrumentationEvent;
    use diesel::sql_types::{BigInt, Nullable, Text};
    use diesel::{Connection, RunQueryDsl, SqliteConnection};

    use super::bind;
    use crate::store::DbConn;

    /// A connection that counts the statements it prepares to keep.
    fn counting_connection() -> (SqliteConnection, Arc<AtomicUsize>) {
        let mut conn = SqliteConnection::establish(":memory:").expect("in-memory database");
        diesel::sql_query("CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT)")
            .execute(&mut conn)
            .expect("table");
        diesel::sql_query("INSERT INTO t VALUES ('a', 1, NULL), ('b', 1, NULL)")
            .execute(&mut conn)
            .expect("rows");
        let cached = Arc::new(AtomicUsize::new(0));
        let counter = cached.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { .. } = event {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        (conn, cached)
    }

    #[test]
    fn a_prepared_update_binds_its_values_in_order_and_is_prepared_once() {
        let (mut conn, cached) = counting_connection();
        for n in [5i64, 6] {
            let changed = super::prepared![
                "UPDATE t SET n = ", ", note = ", " WHERE id = ", "";
                bind::<BigInt, _>(n),
                bind::<Text, _>("set"),
                bind::<Text, _>("a")
            ]
            .execute(&mut conn)
            .expect("update");
            assert_eq!(changed, 1);
        }
        assert_eq!(cached.load(Ordering::SeqCst), 1, "prepared once, reused");
        let rows: Vec<(String, i64, Option<String>)> =
            diesel::dsl::sql::<(Text, BigInt, Nullable<Text>)>(
                "SELECT id, n, note FROM t ORDER BY id",
            )
            .load(&mut conn)
            .expect("rows");
        assert_eq!(
            rows,
            vec![
                ("a".to_string(), 6, Some("set".to_string())),
                ("b".to_string(), 1, None)
            ]
        );
    }

    #[derive(diesel::QueryableByName)]
    struct Sum {
        #[diesel(sql_type = BigInt)]
        total: i64,
    }

    /// Any number of values: they are walked as a list, not a tuple of bounded size.
    #[test]
    fn a_prepared_statement_takes_more_values_than_any_tuple_impl() {
        let (mut conn, _) = counting_connection();
        let sum = super::prepared![
            "SELECT ", " + ", " + ", " + ", " + ", " + ", " + ", " + ", " + ", " + ", " + ",
            " + ", " + ", " + ", " + ", " + ", " + ", " + ", " + ", " + ", " AS total";
            bind::<BigInt, _>(1), bind::<BigInt, _>(2), bind::<BigInt, _>(3),
            bind::<BigInt, _>(4), bind::<BigInt, _>(5), bind::<BigInt, _>(6),
            bind::<BigInt, _>(7), bind::<BigInt, _>(8), bind::<BigInt, _>(9),
            bind::<BigInt, _>(10), bind::<BigInt, _>(11), bind::<BigInt, _>(12),
            bind::<BigInt, _>(13), bind::<BigInt, _>(14), bind::<BigInt, _>(15),
            bind::<BigInt, _>(16), bind::<BigInt, _>(17), bind::<BigInt, _>(18),
            bind::<BigInt, _>(19), bind::<BigInt, _>(20)
        ]
        .get_result::<Sum>(&mut conn)
        .expect("sum");
        assert_eq!(sum.total, 210);
    }

    /// Through the multi-backend connection every query goes through, too.
    #[test]
    fn a_prepared_update_is_prepared_once_through_the_multi_backend_connection() {
        let (conn, cached) = counting_connection();
        let mut conn = DbConn::Sqlite(conn);
        for note in ["first", "second"] {
            let changed = super::prepared![
                "UPDATE t SET note = ", " WHERE id = ", " AND n = ", "";
                bind::<Text, _>(note),
                bind::<Text, _>("b"),
                bind::<BigInt, _>(1)
            ]
            .execute(&mut conn)
            .expect("update");
            assert_eq!(changed, 1);
        }
        assert_eq!(cached.load(Ordering::SeqCst), 1, "prepared once, reused");
    }
}
