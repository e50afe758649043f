//! The store on both backends: each test body is an `async fn(Store)` run once on a fresh
//! Postgres database (`#[sqlx::test]`) and once on a fresh SQLite file, so both dialects are
//! held to the same figures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Generates, for each named `async fn(Store)` of the calling module, a test on Postgres
/// (`postgres::<name>`) and one on SQLite (`sqlite::<name>`).
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[sqlx::test(migrations = false)]
                async fn $name(pool: sqlx::PgPool) {
                    super::$name(crate::helpers::postgres(pool).await).await;
                }
            )+
        }

        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::TempDir::new().unwrap();
                    super::$name(crate::helpers::sqlite(&dir).await).await;
                }
            )+
        }
    };
}

mod batches;
mod gpus;
mod helpers;
mod requests;
mod rollup;
