//! Files: parts in and out, visibility, listing, deletion.

use futures::TryStreamExt;
use nightshift_gateway::store::{Store, now};

nightshift_testkit::on_both_databases!(
    uploaded_parts_read_back_byte_for_byte_once_the_file_is_finished,
    files_list_newest_first_after_a_cursor_and_by_purpose,
    unfinished_uploads_older_than_the_cutoff_are_deleted,
);

/// Uploads `id` for `owner` in one part and finishes it with `purpose`.
async fn upload(store: &Store, owner: &str, id: &str, purpose: &str) {
    store.begin_file(id, owner, "input.jsonl").await.unwrap();
    store.put_part(id, 0, id.as_bytes()).await.unwrap();
    store.finish_file(id, purpose, "input.jsonl", id.len() as i64).await.unwrap();
}

async fn uploaded_parts_read_back_byte_for_byte_once_the_file_is_finished(store: Store) {
    let first: Vec<u8> = (0..=255).collect();
    let second = b"\0tail\xff".to_vec();
    store.begin_file("file-1", "alice", "upload.jsonl").await.unwrap();
    store.put_part("file-1", 0, &first).await.unwrap();
    store.put_part("file-1", 1, &second).await.unwrap();
    assert!(store.get_file("alice", "file-1").await.unwrap().is_none(), "visible mid-upload");

    let size = (first.len() + second.len()) as i64;
    let row = store.finish_file("file-1", "batch", "final.jsonl", size).await.unwrap();
    assert_eq!(
        (row.filename.as_str(), row.purpose.as_str(), row.bytes),
        ("final.jsonl", "batch", size)
    );
    let got = store.get_file("alice", "file-1").await.unwrap().unwrap();
    assert_eq!((got.id.as_str(), got.owner.as_str(), got.bytes), ("file-1", "alice", size));
    assert!(store.get_file("bob", "file-1").await.unwrap().is_none(), "visible to another owner");

    let parts: Vec<bytes::Bytes> = store.file_bytes("file-1").try_collect().await.unwrap();
    assert_eq!(parts.concat(), [first, second].concat());
    assert_eq!(store.get_part("file-1", 2).await.unwrap(), None);

    assert!(store.delete_file("file-1").await.unwrap());
    assert_eq!(store.get_part("file-1", 0).await.unwrap(), None, "parts outlived their file");
    assert!(!store.delete_file("file-1").await.unwrap());
}

async fn files_list_newest_first_after_a_cursor_and_by_purpose(store: Store) {
    for (i, purpose) in
        ["batch", "batch_output", "batch", "batch_output", "batch"].iter().enumerate()
    {
        upload(&store, "alice", &format!("file-{i}"), purpose).await;
    }
    upload(&store, "bob", "file-bob", "batch").await;
    store.begin_file("file-uploading", "alice", "x.jsonl").await.unwrap();
    let ids = |rows: Vec<nightshift_gateway::store::FileRow>| {
        rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };

    let page = store.list_files("alice", None, None, 2).await.unwrap();
    assert_eq!(ids(page), ["file-4", "file-3", "file-2"], "limit + 1 rows, newest first");
    let rest = store.list_files("alice", None, Some("file-3"), 10).await.unwrap();
    assert_eq!(ids(rest), ["file-2", "file-1", "file-0"]);
    let batch = store.list_files("alice", Some("batch"), None, 10).await.unwrap();
    assert_eq!(ids(batch), ["file-4", "file-2", "file-0"]);
    let output = store.list_files("alice", Some("batch_output"), Some("file-3"), 10).await.unwrap();
    assert_eq!(ids(output), ["file-1"]);
    assert_eq!(ids(store.list_files("bob", None, None, 10).await.unwrap()), ["file-bob"]);
}

async fn unfinished_uploads_older_than_the_cutoff_are_deleted(store: Store) {
    upload(&store, "alice", "file-done", "batch").await;
    store.begin_file("file-stale", "alice", "x.jsonl").await.unwrap();
    store.put_part("file-stale", 0, b"half").await.unwrap();

    assert_eq!(store.delete_stale_uploads(now() - 60).await.unwrap(), 0, "too young to delete");
    assert_eq!(store.delete_stale_uploads(now() + 60).await.unwrap(), 1);
    assert_eq!(store.get_part("file-stale", 0).await.unwrap(), None);
    assert!(store.get_file("alice", "file-done").await.unwrap().is_some());
}
