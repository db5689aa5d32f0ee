//! `quorum`: the fault-tolerance table filled by observation.

use clap::Args;

use super::Outcome;
use crate::chaos::fault::Injector;
use crate::chaos::observe::ObserveOptions;
use crate::cluster::image;
use crate::docker;
use crate::error::Result;
use crate::model::table::parse_sizes;
use crate::procedures::quorum_table::{SweepOptions, sweep};
use crate::render::render_table;

#[derive(Debug, Args)]
pub struct QuorumArgs {
    /// Sizes to check: a range (1-9) or a list (1,3,5).
    #[arg(long, default_value = "1-9")]
    pub sizes: String,
    /// etcd line or version: 3.5, 3.4, or a full version with a local image.
    #[arg(long, default_value = image::DEFAULT_VERSION)]
    pub version: String,
    /// Seed for victim choice; printed, so a run can be replayed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long to watch each cell for an acknowledged write, in ms.
    #[arg(long, default_value_t = 3000)]
    pub window_ms: u64,
    /// Clusters checked at once (5 measured fastest on 2 cores, against 3 and 9).
    #[arg(long, default_value_t = 5)]
    pub parallel: usize,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn quorum(args: QuorumArgs, run_id: String) -> Result<Outcome> {
    let sizes = parse_sizes(&args.sizes)?;
    image::Line::parse(&args.version)?;
    let seed = args.seed.unwrap_or_else(Injector::random_seed);
    if !args.json {
        eprintln!("seed {seed} (replay with --seed {seed})");
    }
    let opts = SweepOptions {
        version: args.version,
        seed,
        run_id,
        observe: ObserveOptions {
            window: std::time::Duration::from_millis(args.window_ms),
            ..Default::default()
        },
        parallel: args.parallel,
    };
    let docker = docker::connect().await?;
    let table = sweep(&docker, &sizes, &opts).await?;
    let bad = table.disagreements();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&table).expect("json"));
    } else {
        print!("{}", render_table(&table.sizes));
        for (size, cell) in &bad {
            let what = if cell.observed_writable {
                "a write was acknowledged without quorum"
            } else {
                "no write was acknowledged although quorum held"
            };
            println!("DISAGREES: size {size}, {} failed: {what}", cell.failed);
        }
        println!(
            "{} cells, {} disagree, {:.1}s",
            table.sizes.iter().map(|s| s.cells.len()).sum::<usize>(),
            bad.len(),
            table.elapsed_s
        );
    }
    Ok(if bad.is_empty() {
        Outcome::Ok
    } else {
        Outcome::VerdictFailed
    })
}
