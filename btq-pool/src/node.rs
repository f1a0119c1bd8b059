//! The interface the pool uses to talk to a node, implemented by the embedded chain
//! ([`EmbeddedNode`]) and by the JSON-RPC client (`RpcClient`, feature `runtime-tokio`), and a
//! failover set over several nodes ([`NodeSet`]).

use core::future::Future;
use std::sync::{Arc, Mutex};

use btq_core::block::Block;
use btq_core::time::UnixTime;
use thiserror::Error;

use crate::block::SubmitOutcome;
use crate::chain::{AddressValidation, BlockchainInfo, EmbeddedChain, MiningInfo};
use crate::template::{Template, TemplateError};

/// An error talking to a node. None of these is a miner's fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The connection failed or dropped.
    #[error("node unreachable")]
    Unreachable,
    /// No answer within the timeout.
    #[error("node timed out")]
    Timeout,
    /// HTTP 401/403: wrong credentials or cookie.
    #[error("node refused the credentials")]
    Unauthorized,
    /// An HTTP status other than 200 without a JSON-RPC body.
    #[error("node answered http status {0}")]
    HttpStatus(u16),
    /// A JSON-RPC error object.
    #[error("rpc error {code}: {message}")]
    Rpc {
        /// The error code.
        code: i64,
        /// The node's message (truncated to 200 characters).
        message: String,
    },
    /// The answer is not the expected JSON.
    #[error("malformed node response ({0})")]
    BadResponse(&'static str),
    /// The template does not parse.
    #[error("bad template: {0}")]
    Template(#[from] TemplateError),
    /// Every configured node failed.
    #[error("no healthy node")]
    NoHealthyNode,
    /// The cookie file cannot be read.
    #[error("cannot read the rpc cookie file")]
    Cookie,
    /// A logic error in the pool or the embedded chain.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// What the pool asks of a node: the same calls whether it is a BTQ node over JSON-RPC or the
/// embedded chain.
pub trait NodeApi: Send + Sync {
    /// `getblocktemplate {"rules":["segwit"]}`, long-polling when `longpoll_id` is given.
    fn get_block_template(
        &self,
        longpoll_id: Option<&str>,
    ) -> impl Future<Output = Result<Template, NodeError>> + Send;
    /// `submitblock`.
    fn submit_block(
        &self,
        block: &Block,
    ) -> impl Future<Output = Result<SubmitOutcome, NodeError>> + Send;
    /// `getblockchaininfo`.
    fn get_blockchain_info(&self)
    -> impl Future<Output = Result<BlockchainInfo, NodeError>> + Send;
    /// `getmininginfo`.
    fn get_mining_info(&self) -> impl Future<Output = Result<MiningInfo, NodeError>> + Send;
    /// `validateaddress`.
    fn validate_address(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<AddressValidation, NodeError>> + Send;
}

/// A wall clock given to the embedded node by its driver.
pub type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

/// The embedded chain behind [`NodeApi`]: each call sets the chain's time from the driver's
/// clock, then answers at once (long polls return immediately).
#[derive(Clone)]
pub struct EmbeddedNode {
    chain: Arc<Mutex<EmbeddedChain>>,
    clock: Clock,
}

impl core::fmt::Debug for EmbeddedNode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EmbeddedNode").finish_non_exhaustive()
    }
}

impl EmbeddedNode {
    /// Wraps a shared chain with a clock.
    pub fn new(chain: Arc<Mutex<EmbeddedChain>>, clock: Clock) -> Self {
        Self { chain, clock }
    }

    /// Returns the shared chain.
    pub fn chain(&self) -> &Arc<Mutex<EmbeddedChain>> {
        &self.chain
    }

    fn with<T>(&self, f: impl FnOnce(&mut EmbeddedChain) -> T) -> Result<T, NodeError> {
        let now = (self.clock)();
        let mut c = self
            .chain
            .lock()
            .map_err(|_| NodeError::Internal("embedded chain lock poisoned"))?;
        c.set_time(now);
        Ok(f(&mut c))
    }
}

impl NodeApi for EmbeddedNode {
    async fn get_block_template(&self, _longpoll_id: Option<&str>) -> Result<Template, NodeError> {
        self.with(|c| c.get_block_template())?
            .map_err(NodeError::from)
    }
    async fn submit_block(&self, block: &Block) -> Result<SubmitOutcome, NodeError> {
        self.with(|c| c.submit_block(block))
    }
    async fn get_blockchain_info(&self) -> Result<BlockchainInfo, NodeError> {
        self.with(|c| c.blockchain_info())
    }
    async fn get_mining_info(&self) -> Result<MiningInfo, NodeError> {
        self.with(|c| c.mining_info())
    }
    async fn validate_address(&self, address: &str) -> Result<AddressValidation, NodeError> {
        self.with(|c| c.validate_address(address))
    }
}

/// Health of one node in a [`NodeSet`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeHealth {
    /// Whether the node is considered usable.
    pub healthy: bool,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The last error.
    pub last_error: Option<NodeError>,
}

/// The result of submitting a block to every healthy node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitReport {
    /// Per node (by index): the outcome or the error.
    pub results: Vec<(usize, Result<SubmitOutcome, NodeError>)>,
}

impl SubmitReport {
    /// Returns the best outcome: accepted by any node wins, then any reject, else `None`.
    pub fn best(&self) -> Option<&SubmitOutcome> {
        let oks = || self.results.iter().filter_map(|(_, r)| r.as_ref().ok());
        oks().find(|o| o.is_accepted()).or_else(|| oks().next())
    }
}

/// Several nodes in preference order, with failover.
///
/// Requests go to the first healthy node; a failing node is marked unhealthy after
/// `failures_before_down` consecutive failures and the next one is tried in the same call.
/// Blocks go to every healthy node (every node when none is healthy).
/// [`NodeSet::check_health`] probes each node with `getblockchaininfo`.
#[derive(Debug)]
pub struct NodeSet<N> {
    nodes: Vec<N>,
    health: Mutex<Vec<NodeHealth>>,
    failures_before_down: u32,
}

impl<N: NodeApi> NodeSet<N> {
    /// Creates a set; every node starts healthy.
    pub fn new(nodes: Vec<N>, failures_before_down: u32) -> Self {
        let health = nodes
            .iter()
            .map(|_| NodeHealth {
                healthy: true,
                ..NodeHealth::default()
            })
            .collect();
        Self {
            nodes,
            health: Mutex::new(health),
            failures_before_down: failures_before_down.max(1),
        }
    }

    /// Returns the nodes.
    pub fn nodes(&self) -> &[N] {
        &self.nodes
    }

    /// Returns a snapshot of every node's health.
    pub fn health(&self) -> Vec<NodeHealth> {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Returns the index of the node requests go to first.
    pub fn active(&self) -> Option<usize> {
        self.order().first().copied()
    }

    fn order(&self) -> Vec<usize> {
        let health = self.health();
        let mut healthy: Vec<usize> = (0..self.nodes.len())
            .filter(|i| health.get(*i).is_some_and(|h| h.healthy))
            .collect();
        let unhealthy =
            (0..self.nodes.len()).filter(|i| !health.get(*i).is_some_and(|h| h.healthy));
        healthy.extend(unhealthy);
        healthy
    }

    fn record(&self, index: usize, result: Result<(), &NodeError>) {
        if let Ok(mut health) = self.health.lock()
            && let Some(h) = health.get_mut(index)
        {
            match result {
                Ok(()) => {
                    h.healthy = true;
                    h.consecutive_failures = 0;
                }
                Err(e) => {
                    h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                    h.last_error = Some(e.clone());
                    if h.consecutive_failures >= self.failures_before_down {
                        h.healthy = false;
                    }
                }
            }
        }
    }

    /// Fetches a template from the first node that answers.
    ///
    /// # Errors
    /// [`NodeError::NoHealthyNode`] when every node fails.
    pub async fn get_block_template(
        &self,
        longpoll_id: Option<&str>,
    ) -> Result<(usize, Template), NodeError> {
        for i in self.order() {
            let Some(node) = self.nodes.get(i) else {
                continue;
            };
            match node.get_block_template(longpoll_id).await {
                Ok(t) => {
                    self.record(i, Ok(()));
                    return Ok((i, t));
                }
                Err(e) => self.record(i, Err(&e)),
            }
        }
        Err(NodeError::NoHealthyNode)
    }

    /// Submits a block to every healthy node (to every node if none is healthy).
    pub async fn submit_block(&self, block: &Block) -> SubmitReport {
        let health = self.health();
        let any_healthy = health.iter().any(|h| h.healthy);
        let mut results = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if any_healthy && !health.get(i).is_some_and(|h| h.healthy) {
                continue;
            }
            let r = node.submit_block(block).await;
            self.record(i, r.as_ref().map(|_| ()));
            results.push((i, r));
        }
        SubmitReport { results }
    }

    /// Probes every node with `getblockchaininfo`; returns the healthy count.
    pub async fn check_health(&self) -> usize {
        let mut n = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            let r = node.get_blockchain_info().await;
            if r.is_ok() {
                n += 1;
            }
            self.record(i, r.as_ref().map(|_| ()));
        }
        n
    }

    /// `getblockchaininfo` from the first node that answers.
    ///
    /// # Errors
    /// [`NodeError::NoHealthyNode`] when every node fails.
    pub async fn get_blockchain_info(&self) -> Result<BlockchainInfo, NodeError> {
        for i in self.order() {
            let Some(node) = self.nodes.get(i) else {
                continue;
            };
            match node.get_blockchain_info().await {
                Ok(t) => {
                    self.record(i, Ok(()));
                    return Ok(t);
                }
                Err(e) => self.record(i, Err(&e)),
            }
        }
        Err(NodeError::NoHealthyNode)
    }
}
