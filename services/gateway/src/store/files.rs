//! Files and their bytes, stored in 1 MiB parts.

use super::{Store, now};
use nightshift_shared::on_db;
use nightshift_shared::openai::FileObject;

/// Size of one stored part of a file's bytes.
pub const PART_SIZE: usize = 1024 * 1024;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileRow {
    pub id: String,
    pub owner: String,
    pub filename: String,
    pub purpose: String,
    pub bytes: i64,
    pub created_at: i64,
}

impl FileRow {
    pub fn to_object(&self) -> FileObject {
        FileObject {
            id: self.id.clone(),
            object: "file".into(),
            bytes: self.bytes.max(0) as u64,
            created_at: self.created_at,
            expires_at: None,
            filename: self.filename.clone(),
            purpose: self.purpose.clone(),
            status: "processed".into(),
            status_details: None,
        }
    }
}

macro_rules! file_columns {
    () => {
        "id, owner, filename, purpose, bytes, created_at"
    };
}

impl Store {
    /// Starts an upload: the file stays invisible until [`Store::finish_file`].
    pub async fn begin_file(
        &self,
        id: &str,
        owner: &str,
        filename: &str,
    ) -> Result<(), sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO files (id, owner, filename, purpose, status, created_at)
                 VALUES ($1, $2, $3, '', 'uploading', $4)",
            )
            .bind(id)
            .bind(owner)
            .bind(filename)
            .bind(now())
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    pub async fn put_part(
        &self,
        file_id: &str,
        part_no: i32,
        data: &[u8],
    ) -> Result<(), sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query("INSERT INTO file_parts (file_id, part_no, data) VALUES ($1, $2, $3)")
                .bind(file_id)
                .bind(part_no)
                .bind(data)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    /// Makes an uploaded file visible with its final size and purpose.
    pub async fn finish_file(
        &self,
        id: &str,
        purpose: &str,
        filename: &str,
        bytes: i64,
    ) -> Result<FileRow, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_as(concat!(
                "UPDATE files SET status = 'processed', purpose = $2, filename = $3, bytes = $4
                 WHERE id = $1 RETURNING ",
                file_columns!()
            ))
            .bind(id)
            .bind(purpose)
            .bind(filename)
            .bind(bytes)
            .fetch_one(pool)
            .await
        })
    }

    /// Removes a file and its parts; used for failed uploads and `DELETE /v1/files/{id}`.
    pub async fn delete_file(&self, id: &str) -> Result<bool, sqlx::Error> {
        let done = on_db!(&self.db, pool => {
            sqlx::query("DELETE FROM files WHERE id = $1").bind(id).execute(pool).await?.rows_affected()
        });
        Ok(done > 0)
    }

    /// Drops uploads that never finished (their gateway died mid-upload).
    pub async fn delete_stale_uploads(&self, older_than: i64) -> Result<u64, sqlx::Error> {
        Ok(on_db!(&self.db, pool => {
            sqlx::query("DELETE FROM files WHERE status = 'uploading' AND created_at < $1")
                .bind(older_than)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    pub async fn get_file(&self, owner: &str, id: &str) -> Result<Option<FileRow>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE id = $1 AND owner = $2 AND status = 'processed'"
            ))
            .bind(id)
            .bind(owner)
            .fetch_optional(pool)
            .await
        })
    }

    /// Newest first, `limit + 1` rows so the caller can tell `has_more`.
    pub async fn list_files(
        &self,
        owner: &str,
        purpose: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FileRow>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files
                 WHERE owner = $1 AND status = 'processed'
                   AND (CAST($2 AS TEXT) IS NULL OR purpose = $2)
                   AND (CAST($3 AS TEXT) IS NULL
                        OR seq < (SELECT seq FROM files WHERE id = $3 AND owner = $1))
                 ORDER BY seq DESC LIMIT $4"
            ))
            .bind(owner)
            .bind(purpose)
            .bind(after)
            .bind(limit + 1)
            .fetch_all(pool)
            .await
        })
    }

    pub async fn get_part(
        &self,
        file_id: &str,
        part_no: i32,
    ) -> Result<Option<Vec<u8>>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT data FROM file_parts WHERE file_id = $1 AND part_no = $2")
                .bind(file_id)
                .bind(part_no)
                .fetch_optional(pool)
                .await
        })
    }
}

impl Store {
    /// A file's bytes, one stored part at a time: memory stays at one part whatever the file's size.
    pub fn file_bytes(
        &self,
        file_id: &str,
    ) -> impl futures::Stream<Item = Result<bytes::Bytes, sqlx::Error>> + Send + 'static {
        let store = self.clone();
        let file_id = file_id.to_owned();
        futures::stream::try_unfold(0i32, move |part_no| {
            let store = store.clone();
            let file_id = file_id.clone();
            async move {
                let part = store.get_part(&file_id, part_no).await?;
                Ok(part.map(|data| (bytes::Bytes::from(data), part_no + 1)))
            }
        })
    }

    /// Whether a batch that is not yet final reads this file.
    pub async fn file_in_use(&self, file_id: &str) -> Result<Option<String>, sqlx::Error> {
        on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT id FROM batches WHERE input_file_id = $1
                   AND status IN ('validating', 'in_progress', 'finalizing', 'cancelling') LIMIT 1",
            )
            .bind(file_id)
            .fetch_optional(pool)
            .await
        })
    }
}
