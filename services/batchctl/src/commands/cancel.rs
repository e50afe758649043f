//! `batchctl cancel`: asks the gateway to stop a batch.

use crate::{Client, Outcome, format};

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    pub batch_id: String,
}

pub async fn run(client: &Client, args: &CancelArgs) -> anyhow::Result<Outcome> {
    let batch = client.cancel_batch(&args.batch_id).await?;
    println!("{}", format::summary(&batch, format::now_unix()));
    Ok(Outcome::Success)
}
