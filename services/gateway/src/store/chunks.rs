//! The chunks a batch is split into: recorded when validation ends, marked as they are published.

use super::Store;
use nightshift_shared::db::Db;
use nightshift_shared::on_db;

/// One chunk of a batch: consecutive requests from `first_line` to `last_line` of the input.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChunkRow {
    pub chunk_index: i32,
    pub first_line: i32,
    pub last_line: i32,
    pub request_count: i32,
}

impl Store {
    /// Records a validated batch's chunks and moves it to `in_progress`, all or nothing.
    /// Returns false when the batch left `validating` meanwhile (cancelled).
    pub async fn start_batch(
        &self,
        id: &str,
        total: i64,
        model: Option<&str>,
        chunks: &[ChunkRow],
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE batches SET status = 'in_progress', in_progress_at = $2, total = $3,
                                    model = $4, chunk_count = $5
                 WHERE id = $1 AND status = 'validating'",
            )
            .bind(id)
            .bind(now)
            .bind(total)
            .bind(model)
            .bind(chunks.len() as i32)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM batch_chunks WHERE batch_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            // The one step where the dialects part: see `InsertChunks`.
            tx.insert_chunks(id, chunks).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn unpublished_chunks(&self, id: &str) -> Result<Vec<ChunkRow>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT chunk_index, first_line, last_line, request_count FROM batch_chunks
                 WHERE batch_id = $1 AND published_at IS NULL ORDER BY chunk_index",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })
    }

    /// Counts of a batch's chunks: (all, published).
    pub async fn chunk_progress(&self, id: &str) -> Result<(i64, i64), sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT COUNT(*), COUNT(published_at) FROM batch_chunks WHERE batch_id = $1",
            )
            .bind(id)
            .fetch_one(pool)
            .await
        })
    }

    pub async fn mark_published_many(
        &self,
        id: &str,
        chunk_indexes: &[i32],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        // SQLite has no arrays for `= ANY($2)`.
        match &self.db {
            Db::Postgres(pool) => sqlx::query(
                "UPDATE batch_chunks SET published_at = $3
                 WHERE batch_id = $1 AND chunk_index = ANY($2) AND published_at IS NULL",
            )
            .bind(id)
            .bind(chunk_indexes)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()),
            Db::Sqlite(pool) => {
                super::sqlite::mark_published_many(pool, id, chunk_indexes, now).await
            }
        }
    }
}

/// The one step of `start_batch` where the dialects part: Postgres takes the chunks as arrays in
/// one `UNNEST`; SQLite, which has no arrays, as multi-row `VALUES` (in `sqlite.rs`).
pub(super) trait InsertChunks {
    async fn insert_chunks(
        &mut self,
        batch_id: &str,
        chunks: &[ChunkRow],
    ) -> Result<(), sqlx::Error>;
}

impl InsertChunks for sqlx::PgConnection {
    async fn insert_chunks(
        &mut self,
        batch_id: &str,
        chunks: &[ChunkRow],
    ) -> Result<(), sqlx::Error> {
        let column = |f: fn(&ChunkRow) -> i32| chunks.iter().map(f).collect::<Vec<i32>>();
        sqlx::query(
            "INSERT INTO batch_chunks (batch_id, chunk_index, first_line, last_line, request_count)
             SELECT $1, * FROM UNNEST($2::INT[], $3::INT[], $4::INT[], $5::INT[])",
        )
        .bind(batch_id)
        .bind(column(|c| c.chunk_index))
        .bind(column(|c| c.first_line))
        .bind(column(|c| c.last_line))
        .bind(column(|c| c.request_count))
        .execute(self)
        .await
        .map(|_| ())
    }
}
