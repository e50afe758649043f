//! `spawn_gateway` and `batchctl(..)`: a gateway in this test's runtime, and the binary run
//! against it as a user would.

use batchctl::Client;
use batchctl::generate::{DEFAULT_SYSTEM_PROMPT, GenEndpoint, GenSpec, write_batch};
use nightshift_shared::db::Db;
use nightshift_shared::openai::{Batch, BatchStatus};
use nightshift_testkit::NatsServer;
use nightshift_testkit::gateway::InProcessGateway;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A gateway serving on a random port, stopped on drop.
pub struct Gateway {
    pub url: String,
    pub pool: PgPool,
    /// The library client, for arranging what the test then checks through the binary.
    pub client: Client,
    _gateway: InProcessGateway,
    _nats: NatsServer,
}

pub async fn spawn_gateway(pool: PgPool) -> Gateway {
    spawn_gateway_with(pool, &[]).await
}

/// Starts a gateway with extra command-line `args` (such as API keys) on its own NATS server.
pub async fn spawn_gateway_with(pool: PgPool, args: &[&str]) -> Gateway {
    let nats = NatsServer::start();
    let gateway = InProcessGateway::start(&nats.url(), Db::Postgres(pool.clone()), args).await;
    let url = gateway.url.clone();
    let client = Client::new(&url, None).unwrap();
    Gateway { url, pool, client, _gateway: gateway, _nats: nats }
}

/// What a run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `batchctl args` against `url` with no API key.
pub async fn batchctl_at(url: &str, args: &[&str]) -> Run {
    batchctl_with_env(&[("NIGHTSHIFT_URL", url)], args).await
}

/// Runs `batchctl args` with `env` on top of a clean Nightshift environment. Async, so the gateway
/// in this test's runtime keeps serving while the binary talks to it.
pub async fn batchctl_with_env(env: &[(&str, &str)], args: &[&str]) -> Run {
    batchctl_within(Duration::from_secs(60), env, args).await
}

/// Runs `batchctl args` with `env`, failing the test if it runs longer than `limit`.
pub async fn batchctl_within(limit: Duration, env: &[(&str, &str)], args: &[&str]) -> Run {
    let output = batchctl_command(env, args).output();
    let output = tokio::time::timeout(limit, output)
        .await
        .unwrap_or_else(|_| panic!("batchctl ran for over {limit:?}"))
        .unwrap();
    Run {
        code: output.status.code().expect("batchctl was killed by a signal"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The `batchctl args` command with `env` on top of a clean Nightshift environment.
pub fn batchctl_command(env: &[(&str, &str)], args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_batchctl"));
    command
        .args(args)
        .env_remove("NIGHTSHIFT_URL")
        .env_remove("NIGHTSHIFT_API_KEY")
        .env_remove("NIGHTSHIFT_METRICS_URL")
        .envs(env.iter().copied())
        .kill_on_drop(true);
    command
}

impl Gateway {
    pub async fn batchctl(&self, args: &[&str]) -> Run {
        batchctl_at(&self.url, args).await
    }

    /// `batchctl submit path`, asserting success; returns the batch id it printed.
    pub async fn submit(&self, path: &Path) -> String {
        let run = self.batchctl(&["submit", path.to_str().unwrap()]).await;
        assert_eq!(run.code, 0, "{run:?}");
        run.stdout.trim().to_owned()
    }

    /// Polls a batch until it reaches `status`, failing the test after 30 s.
    pub async fn wait_for(&self, id: &str, status: BatchStatus) -> Batch {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let batch = self.client.get_batch(id).await.unwrap();
            if batch.status == status {
                return batch;
            }
            assert!(Instant::now() < deadline, "batch {id} stuck in {:?}", batch.status);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sets a batch's status directly in the gateway's database. Workers do not exist yet, so
    /// no batch can end on its own in these tests; this stands in for them.
    pub async fn force_status(&self, id: &str, status: BatchStatus) {
        let sql = match status {
            BatchStatus::Completed => {
                "UPDATE batches SET status = 'completed', completed_at = $2 WHERE id = $1"
            }
            BatchStatus::Cancelled => {
                "UPDATE batches SET status = 'cancelled', cancelled_at = $2 WHERE id = $1"
            }
            BatchStatus::Failed => {
                "UPDATE batches SET status = 'failed', failed_at = $2 WHERE id = $1"
            }
            other => panic!("force_status to {other:?}"),
        };
        let now = nightshift_gateway::store::now();
        let done = sqlx::query(sql).bind(id).bind(now).execute(&self.pool).await;
        assert_eq!(done.unwrap().rows_affected(), 1);
    }
}

/// Writes a valid chat-completions batch of `n` requests, made by `batchctl`'s own generator.
pub fn valid_batch_file(dir: &Path, n: u64) -> PathBuf {
    let spec = GenSpec {
        requests: n,
        model: "llama3.2:1b".into(),
        endpoint: GenEndpoint::Chat,
        system_prompt: DEFAULT_SYSTEM_PROMPT.into(),
        max_tokens: 16,
        seed: 1,
    };
    let path = dir.join(format!("batch_{n}.jsonl"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write_batch(&spec, &mut out).unwrap();
    path
}
