//! `btq-index-dirsync DIR DB [BATCH]`: indexes the block files of DIR (`<height>.blk`) into the
//! redb database DB, committing every BATCH blocks (default 1), and prints the tip. Used by the
//! crash-safety test, which kills it with SIGKILL at random points, and by the test of a reader
//! in another process (the file is opened shared).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use btq_index::driver::{DirSource, SyncOptions, Syncer};
use btq_index::{ChainSync, Indexer, RedbStore};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(db)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: btq-index-dirsync DIR DB [BATCH]");
        return ExitCode::from(2);
    };
    let batch = args.get(3).and_then(|b| b.parse().ok()).unwrap_or(1);
    let store = match RedbStore::open_shared(db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("open {db}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = SyncOptions {
        batch_blocks: batch,
        ..SyncOptions::default()
    };
    let mut syncer = Syncer::new(
        &store,
        DirSource::new(dir),
        ChainSync::new(Indexer::default()),
        opts,
    );
    match syncer.sync_to_tip(&mut |_| {}) {
        Ok(tip) => {
            println!("{}", tip.map_or(-1, |t| i64::from(t.height)));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sync: {e}");
            ExitCode::FAILURE
        }
    }
}
