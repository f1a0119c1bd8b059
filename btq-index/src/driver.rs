//! The blocking sync driver: answers [`ChainSync`] queries from a [`BlockSource`], stages
//! changesets in batches and commits them to a [`Store`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use btq_core::block::{Block, BlockHeader};
use btq_core::encoding::{DecodeError, decode_from_slice};
use btq_core::hash::BlockHash;
use thiserror::Error;

use crate::changeset::{ChangeSet, Merge};
use crate::indexer::read_tip;
use crate::schema::BlockRef;
use crate::store::Store;
use crate::sync::{ChainSync, SyncAnswer, SyncError, SyncQuery, SyncStep};
use crate::view::{Overlay, StoreError};

/// Largest block accepted from a source (the consensus serialized-size limit).
pub const MAX_BLOCK_BYTES: usize = btq_core::block::MAX_BLOCK_SERIALIZED_SIZE;

/// Where blocks come from: the node's RPC, block files, or a test chain.
pub trait BlockSource {
    /// The source's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Returns the source's best block.
    ///
    /// # Errors
    /// A source failure.
    fn tip(&mut self) -> Result<BlockRef, Self::Error>;

    /// Returns the hash at `height` of the source's best chain, `None` above its tip.
    ///
    /// # Errors
    /// A source failure.
    fn block_hash(&mut self, height: u32) -> Result<Option<BlockHash>, Self::Error>;

    /// Returns the serialized block `hash`.
    ///
    /// # Errors
    /// A source failure.
    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>, Self::Error>;
}

/// How the driver batches and reacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// Commit at least every this many blocks (1: one commit per block).
    pub batch_blocks: u32,
    /// Commit when the staged changeset holds this many rows (bounds memory: roughly 150 bytes
    /// per row).
    pub batch_rows: usize,
    /// On a reorg deeper than the limit ([`SyncError::ReorgTooDeep`]): resync from the fork
    /// point ([`ChainSync::allow_deep_reorg`]) instead of failing; if the undo data does not
    /// reach it ([`SyncError::UndoUnavailable`]), clear the store and reindex.
    pub resync_on_deep_reorg: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            batch_blocks: 1000,
            batch_rows: 2_000_000,
            resync_on_deep_reorg: false,
        }
    }
}

/// Sync progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// The committed tip height.
    pub height: Option<u32>,
    /// The node's height.
    pub target: Option<u32>,
    /// Blocks applied since the start.
    pub blocks: u64,
    /// Transactions applied since the start.
    pub txs: u64,
    /// Block bytes applied since the start.
    pub bytes: u64,
    /// Blocks undone since the start.
    pub undone: u64,
    /// Time since the start.
    pub elapsed: Duration,
}

impl Progress {
    fn per_sec(&self, n: u64) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { n as f64 / s } else { 0.0 }
    }
    /// Returns blocks per second.
    pub fn blocks_per_sec(&self) -> f64 {
        self.per_sec(self.blocks)
    }
    /// Returns transactions per second.
    pub fn tx_per_sec(&self) -> f64 {
        self.per_sec(self.txs)
    }
    /// Returns megabytes of blocks per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.per_sec(self.bytes) / 1e6
    }
    /// Returns the estimated time to reach the node's height at the current rate.
    pub fn eta(&self) -> Option<Duration> {
        let left = self.target?.saturating_sub(self.height.unwrap_or(0));
        let r = self.blocks_per_sec();
        (r > 0.0).then(|| Duration::from_secs_f64(f64::from(left) / r))
    }
}

impl core::fmt::Display for Progress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "height {}/{} | {:.1} blocks/s | {:.0} tx/s | {:.2} MB/s",
            self.height
                .map_or_else(|| "-".to_owned(), |h| h.to_string()),
            self.target
                .map_or_else(|| "?".to_owned(), |h| h.to_string()),
            self.blocks_per_sec(),
            self.tx_per_sec(),
            self.mb_per_sec()
        )?;
        if let Some(eta) = self.eta() {
            write!(f, " | ETA {}s", eta.as_secs())?;
        }
        Ok(())
    }
}

/// An error of the driver.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DriverError<E: std::error::Error + 'static> {
    /// The block source failed.
    #[error("block source: {0}")]
    Source(#[source] E),
    /// A block from the source does not decode.
    #[error("block {hash} does not decode: {error}")]
    Decode {
        /// The block asked for.
        hash: BlockHash,
        /// The decoder's error.
        error: DecodeError,
    },
    /// A block is over [`MAX_BLOCK_BYTES`].
    #[error("block {hash} is {len} bytes, over the limit")]
    TooLarge {
        /// The block.
        hash: BlockHash,
        /// Its size.
        len: usize,
    },
    /// Following the chain failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Syncs a store with a block source.
#[derive(Debug)]
pub struct Syncer<'s, S: Store, B: BlockSource> {
    store: &'s S,
    source: B,
    sync: ChainSync,
    options: SyncOptions,
    progress: Progress,
    started: Instant,
    resyncs: u32,
    deep_reorgs: u32,
}

impl<'s, S: Store, B: BlockSource> Syncer<'s, S, B> {
    /// Creates a driver.
    pub fn new(store: &'s S, source: B, sync: ChainSync, options: SyncOptions) -> Self {
        Self {
            store,
            source,
            sync,
            options,
            progress: Progress {
                height: None,
                target: None,
                blocks: 0,
                txs: 0,
                bytes: 0,
                undone: 0,
                elapsed: Duration::ZERO,
            },
            started: Instant::now(),
            resyncs: 0,
            deep_reorgs: 0,
        }
    }

    /// Returns the progress so far.
    pub const fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Returns how many times a reorg deeper than the undo data made the driver clear the
    /// store and reindex.
    pub const fn resyncs(&self) -> u32 {
        self.resyncs
    }

    /// Returns how many reorgs deeper than the limit the driver resolved from the fork point
    /// with the undo data kept beyond the limit (no reindex).
    pub const fn deep_reorgs(&self) -> u32 {
        self.deep_reorgs
    }

    /// Returns the block source.
    pub fn source_mut(&mut self) -> &mut B {
        &mut self.source
    }

    fn answer(&mut self, q: SyncQuery) -> Result<SyncAnswer, DriverError<B::Error>> {
        Ok(match q {
            SyncQuery::NodeTip => {
                let t = self.source.tip().map_err(DriverError::Source)?;
                self.progress.target = Some(t.height);
                SyncAnswer::NodeTip {
                    height: t.height,
                    hash: t.hash,
                }
            }
            SyncQuery::BlockHashAt(h) => SyncAnswer::BlockHashAt {
                height: h,
                hash: self.source.block_hash(h).map_err(DriverError::Source)?,
            },
            SyncQuery::Block { hash, .. } => {
                let bytes = self.source.block(&hash).map_err(DriverError::Source)?;
                if bytes.len() > MAX_BLOCK_BYTES {
                    return Err(DriverError::TooLarge {
                        hash,
                        len: bytes.len(),
                    });
                }
                let block: Block = decode_from_slice(&bytes)
                    .map_err(|error| DriverError::Decode { hash, error })?;
                SyncAnswer::Block(Box::new(block))
            }
        })
    }

    /// Syncs to the source's tip, committing in batches, and returns the committed tip.
    /// `on_progress` is called after every commit.
    ///
    /// Commits are pipelined: while one batch is written (and fsynced) on a second thread, the
    /// next batch is indexed on top of it; commits still happen one at a time and in order.
    ///
    /// # Errors
    /// A source, sync or store failure. Everything committed before the failure stays.
    pub fn sync_to_tip(
        &mut self,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<Option<BlockRef>, DriverError<B::Error>> {
        let store = self.store;
        std::thread::scope(|scope| {
            let mut writer = Writer {
                store,
                scope,
                inflight: None,
            };
            let result = self.sync_loop(&mut writer, on_progress);
            // Never leave a commit running unobserved: wait for it whatever happened.
            let waited = writer.wait();
            let tip = result?;
            waited?;
            Ok(tip)
        })
    }

    fn sync_loop<'scope, 'env>(
        &mut self,
        writer: &mut Writer<'scope, 'env, S>,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<Option<BlockRef>, DriverError<B::Error>> {
        let empty = ChangeSet::default();
        // The tip of the batch being committed, reported once it is durable.
        let mut pending: Option<Option<BlockRef>> = None;
        let mut capacity: usize = 0;
        loop {
            let mut staged = ChangeSet::with_capacity(capacity);
            let mut staged_blocks: u32 = 0;
            let mut done = false;
            let mut flush = false;
            let mut sync_commit = false;
            let mut deep = None;
            {
                let snap = self.store.snapshot()?;
                let inflight = writer.inflight.as_ref().map_or(&empty, |(_, cs)| &**cs);
                let base = Overlay::new(&snap, inflight);
                while !flush {
                    let step = match self.sync.poll_staged(&base, &mut staged) {
                        Ok(s) => s,
                        Err(
                            e
                            @ (SyncError::ReorgTooDeep { .. } | SyncError::UndoUnavailable { .. }),
                        ) => {
                            deep = Some(e);
                            sync_commit = true;
                            break;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    match step {
                        SyncStep::Query(q) => {
                            let a = self.answer(q)?;
                            self.sync.resolve(a)?;
                        }
                        SyncStep::Staged { tx_count, size } => {
                            staged_blocks = staged_blocks.saturating_add(1);
                            self.progress.blocks = self.progress.blocks.saturating_add(1);
                            self.progress.txs = self.progress.txs.saturating_add(tx_count as u64);
                            self.progress.bytes = self.progress.bytes.saturating_add(size as u64);
                            flush = staged_blocks >= self.options.batch_blocks
                                || staged.row_count() >= self.options.batch_rows;
                        }
                        SyncStep::Undo(changeset) => {
                            staged.merge(changeset);
                            self.progress.undone = self.progress.undone.saturating_add(1);
                            flush = true;
                            sync_commit = true;
                        }
                        SyncStep::Apply {
                            changeset,
                            tx_count,
                            size,
                        } => {
                            // Not produced by `poll_staged`; handled for completeness.
                            staged.merge(changeset);
                            self.progress.blocks = self.progress.blocks.saturating_add(1);
                            self.progress.txs = self.progress.txs.saturating_add(tx_count as u64);
                            self.progress.bytes = self.progress.bytes.saturating_add(size as u64);
                            flush = true;
                        }
                        SyncStep::CaughtUp => {
                            flush = true;
                            done = true;
                            sync_commit = true;
                        }
                    }
                }
            }
            // The previous batch must be durable before the next one starts committing.
            writer.wait()?;
            let mut committed = pending.take();
            if !staged.is_empty() {
                capacity = capacity.max(staged.rows.len().min(self.options.batch_rows));
                let tip = staged.tip();
                writer.start(staged);
                if sync_commit {
                    writer.wait()?;
                    committed = Some(tip);
                } else {
                    pending = Some(tip);
                }
            }
            if let Some(e) = deep {
                if !self.options.resync_on_deep_reorg {
                    return Err(e.into());
                }
                if matches!(e, SyncError::ReorgTooDeep { .. }) && !self.sync.deep_reorg_allowed() {
                    // Resync from the fork point with the undo data kept beyond the limit.
                    self.sync.allow_deep_reorg();
                    self.deep_reorgs = self.deep_reorgs.saturating_add(1);
                    continue;
                }
                // The undo data does not reach the fork point: rebuild the index.
                self.store.clear()?;
                self.sync.reset();
                self.resyncs = self.resyncs.saturating_add(1);
                continue;
            }
            if let Some(tip) = committed {
                self.progress.height = tip.map(|t| t.height);
            }
            if committed.is_some() || done {
                self.progress.elapsed = self.started.elapsed();
                on_progress(&self.progress);
            }
            if done {
                let tip = read_tip(&self.store.snapshot()?)?.map(|t| t.block);
                self.progress.height = tip.map(|t| t.height);
                return Ok(tip);
            }
        }
    }
}

/// The commit thread: at most one changeset is being committed at any time.
struct Writer<'scope, 'env, S: Store> {
    store: &'env S,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    inflight: Option<Inflight<'scope>>,
}

/// A commit running on the commit thread, and the changeset it writes.
type Inflight<'scope> = (
    std::thread::ScopedJoinHandle<'scope, Result<(), StoreError>>,
    Arc<ChangeSet>,
);

impl<'scope, 'env, S: Store> Writer<'scope, 'env, S> {
    /// Starts committing `cs` on the commit thread (after [`Writer::wait`]).
    fn start(&mut self, cs: ChangeSet) {
        let cs = Arc::new(cs);
        let store = self.store;
        let job = Arc::clone(&cs);
        let handle = self.scope.spawn(move || store.commit(&job));
        self.inflight = Some((handle, cs));
    }

    /// Waits for the running commit, if any.
    fn wait(&mut self) -> Result<(), StoreError> {
        match self.inflight.take() {
            Some((h, _)) => h.join().unwrap_or_else(|_| {
                Err(StoreError::backend(
                    "driver",
                    "commit",
                    "the commit thread panicked",
                ))
            }),
            None => Ok(()),
        }
    }
}

/// A directory of block files named `<height>.blk` (decimal, any zero padding), each one
/// serialized block: a replayable chain for tests, crash drills and offline indexing.
#[derive(Debug)]
pub struct DirSource {
    dir: PathBuf,
    hashes: HashMap<BlockHash, u32>,
}

/// An error reading a [`DirSource`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DirSourceError {
    /// I/O failed.
    #[error("{path:?}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not a block.
    #[error("{path:?}: not a block")]
    NotABlock {
        /// The path.
        path: PathBuf,
    },
    /// Asked for a block that was not listed.
    #[error("unknown block {0}")]
    Unknown(BlockHash),
    /// The directory holds no block 0.
    #[error("no blocks in {0:?}")]
    Empty(PathBuf),
}

impl DirSource {
    /// Reads block files from `dir`.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self {
            dir: dir.as_ref().to_path_buf(),
            hashes: HashMap::new(),
        }
    }

    /// Returns the path of the block file at `height`.
    pub fn path_of(dir: &Path, height: u32) -> PathBuf {
        dir.join(format!("{height:010}.blk"))
    }

    fn read(&self, height: u32) -> Result<Option<Vec<u8>>, DirSourceError> {
        let path = Self::path_of(&self.dir, height);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DirSourceError::Io { path, source }),
        }
    }

    fn header_hash(&self, height: u32, bytes: &[u8]) -> Result<BlockHash, DirSourceError> {
        let h: [u8; 80] = bytes
            .get(..80)
            .and_then(|s| <[u8; 80]>::try_from(s).ok())
            .ok_or_else(|| DirSourceError::NotABlock {
                path: Self::path_of(&self.dir, height),
            })?;
        Ok(BlockHeader::from_bytes(&h).block_hash())
    }
}

impl BlockSource for DirSource {
    type Error = DirSourceError;

    fn tip(&mut self) -> Result<BlockRef, DirSourceError> {
        let mut h: u32 = 0;
        let mut last = None;
        while let Some(b) = self.read(h)? {
            let hash = self.header_hash(h, &b)?;
            self.hashes.insert(hash, h);
            last = Some(BlockRef { height: h, hash });
            match h.checked_add(1) {
                Some(n) => h = n,
                None => break,
            }
        }
        last.ok_or_else(|| DirSourceError::Empty(self.dir.clone()))
    }

    fn block_hash(&mut self, height: u32) -> Result<Option<BlockHash>, DirSourceError> {
        match self.read(height)? {
            Some(b) => {
                let hash = self.header_hash(height, &b)?;
                self.hashes.insert(hash, height);
                Ok(Some(hash))
            }
            None => Ok(None),
        }
    }

    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>, DirSourceError> {
        let h = *self
            .hashes
            .get(hash)
            .ok_or(DirSourceError::Unknown(*hash))?;
        self.read(h)?.ok_or(DirSourceError::Unknown(*hash))
    }
}
