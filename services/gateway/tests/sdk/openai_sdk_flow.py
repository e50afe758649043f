"""Drives the gateway with the unmodified OpenAI Python SDK (pip install openai).

Usage: openai_sdk_flow.py BASE_URL INPUT_JSONL
"""
import sys
import time

from openai import NotFoundError, OpenAI


def main() -> None:
    base_url, input_path = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key="unused-when-keys-are-off", max_retries=0)

    with open(input_path, "rb") as f:
        uploaded = client.files.create(file=f, purpose="batch")
    assert uploaded.id.startswith("file-"), uploaded
    assert uploaded.purpose == "batch"

    original = open(input_path, "rb").read()
    assert client.files.content(uploaded.id).read() == original

    created = []
    for n in range(3):
        batch = client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"test_batch_num": str(n + 1)},
        )
        assert batch.status == "validating", batch
        created.append(batch.id)

    deadline = time.time() + 30
    while True:
        got = client.batches.retrieve(created[0])
        if got.status == "in_progress":
            break
        assert time.time() < deadline, got
        time.sleep(0.05)
    assert got.request_counts.total == 5, got
    assert got.metadata == {"test_batch_num": "1"}

    # Pagination: the SDK follows `after` by itself when iterating.
    first_page = client.batches.list(limit=2)
    assert [b.id for b in first_page.data] == [created[2], created[1]], first_page
    assert first_page.has_more
    every = [b.id for b in client.batches.list(limit=2)]
    assert every == list(reversed(created)), every

    cancelled = client.batches.cancel(created[0])
    assert cancelled.status == "cancelling", cancelled

    try:
        client.batches.retrieve("batch_does_not_exist")
        raise AssertionError("expected a 404")
    except NotFoundError as e:
        assert "No such Batch object" in str(e), e

    print("SDK FLOW OK")


if __name__ == "__main__":
    main()
