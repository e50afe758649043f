//! `batchctl status`: one batch, as a line or as JSON.

use crate::{Client, Outcome, format};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    pub batch_id: String,
    /// Print the batch object as JSON instead.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(client: &Client, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let batch = client.get_batch(&args.batch_id).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&batch)?);
    } else {
        println!("{}", format::summary(&batch, format::now_unix()));
    }
    Ok(Outcome::Success)
}
