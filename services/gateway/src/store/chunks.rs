//! The chunks a batch is split into: recorded when validation ends, marked as they are published.

use super::Store;
use nightshift_shared::db::ROWS_PER_STATEMENT;
use nightshift_shared::on_db;
use sqlx::QueryBuilder;

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
            for part in chunks.chunks(ROWS_PER_STATEMENT) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO batch_chunks \
                     (batch_id, chunk_index, first_line, last_line, request_count) ",
                );
                insert.push_values(part, |mut row, c| {
                    row.push_bind(id)
                        .push_bind(c.chunk_index)
                        .push_bind(c.first_line)
                        .push_bind(c.last_line)
                        .push_bind(c.request_count);
                });
                insert.build().persistent(false).execute(&mut *tx).await?;
            }
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
        on_db!(&self.db, pool => {
            let mut tx = pool.begin_with(self.db.begin_write()).await?;
            for part in chunk_indexes.chunks(ROWS_PER_STATEMENT) {
                let mut update = QueryBuilder::new("UPDATE batch_chunks SET published_at = ");
                update
                    .push_bind(now)
                    .push(" WHERE batch_id = ")
                    .push_bind(id)
                    .push(" AND published_at IS NULL AND chunk_index IN (");
                let mut list = update.separated(", ");
                for index in part {
                    list.push_bind(*index);
                }
                list.push_unseparated(")");
                update.build().persistent(false).execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }
}
