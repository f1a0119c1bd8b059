//! Typed Stratum V1 messages: parsing client requests and encoding server lines.
//!
//! Parsing borrows from the input line and allocates only for strings with JSON escapes. Every
//! variable-length field has a `MAX_*` limit checked before it is stored. Encoders append one
//! complete line, terminated by `\n`, to a caller-owned buffer.
//!
//! Wire shapes follow `stratum-v1.md` §1 and §3: successes carry `"error":null`; errors are
//! `[code, message, null]` arrays with the slush codes 20–25; notifications carry `"id":null`;
//! request ids are echoed verbatim.

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;

use btq_core::pow::ShareDifficulty;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;
use thiserror::Error;

use crate::types::{Extranonce1, Extranonce2, ExtranonceBytes, MAX_EXTRANONCE_SIZE};

/// Longest request id, in bytes of JSON text, that is echoed back.
pub const MAX_REQUEST_ID_LEN: usize = 64;
/// Most parameters read from one request; longer parameter arrays are rejected.
pub const MAX_PARAMS: usize = 16;
/// Longest username (`mining.authorize` and `mining.submit` worker name), in bytes.
pub const MAX_USERNAME_LEN: usize = 128;
/// Longest password, in bytes.
pub const MAX_PASSWORD_LEN: usize = 128;
/// Longest user agent (`mining.subscribe`), in bytes.
pub const MAX_USER_AGENT_LEN: usize = 256;
/// Most extensions named in one `mining.configure`.
pub const MAX_CONFIGURE_EXTENSIONS: usize = 8;
/// Longest extension name in `mining.configure`, in bytes.
pub const MAX_EXTENSION_NAME_LEN: usize = 64;
/// Longest job id accepted from a miner, in hex digits (a `u64`).
pub const MAX_JOB_ID_LEN: usize = 16;

/// A JSON-RPC request id, echoed verbatim in the response.
///
/// Small non-negative integers and `null` are stored inline; any other JSON value is kept as
/// its exact text (at most [`MAX_REQUEST_ID_LEN`] bytes).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct RequestId(IdRepr);

#[derive(Clone, PartialEq, Eq, Hash, Default)]
enum IdRepr {
    #[default]
    Null,
    Num(u64),
    Raw(Box<str>),
}

impl RequestId {
    /// The `null` id (notifications, and replies to requests whose id could not be read).
    pub const NULL: Self = Self(IdRepr::Null);

    /// Creates an integer id.
    pub const fn from_u64(n: u64) -> Self {
        Self(IdRepr::Num(n))
    }

    /// Creates an id from the exact JSON text of a value.
    ///
    /// # Errors
    /// [`ParseError::IdTooLong`] if the text is longer than [`MAX_REQUEST_ID_LEN`], or
    /// [`ParseError::Malformed`] if it is not one JSON value.
    pub fn from_json(text: &str) -> Result<Self, ParseError> {
        if text.len() > MAX_REQUEST_ID_LEN {
            return Err(ParseError::IdTooLong {
                limit: MAX_REQUEST_ID_LEN,
                len: text.len(),
            });
        }
        let raw: &RawValue = serde_json::from_str(text).map_err(|_| ParseError::Malformed)?;
        Self::from_raw(Some(raw))
    }

    fn from_raw(raw: Option<&RawValue>) -> Result<Self, ParseError> {
        let Some(raw) = raw else {
            return Ok(Self::NULL);
        };
        let text = raw.get();
        if text.len() > MAX_REQUEST_ID_LEN {
            return Err(ParseError::IdTooLong {
                limit: MAX_REQUEST_ID_LEN,
                len: text.len(),
            });
        }
        let b = text.as_bytes();
        let canonical_int = !b.is_empty()
            && b.len() <= 19
            && b.iter().all(u8::is_ascii_digit)
            && (b.len() == 1 || b.first() != Some(&b'0'));
        if canonical_int && let Ok(n) = text.parse::<u64>() {
            return Ok(Self(IdRepr::Num(n)));
        }
        if text == "null" {
            return Ok(Self::NULL);
        }
        Ok(Self(IdRepr::Raw(text.into())))
    }

    /// Returns the integer value if the id is a non-negative integer.
    pub const fn as_u64(&self) -> Option<u64> {
        match self.0 {
            IdRepr::Num(n) => Some(n),
            _ => None,
        }
    }

    /// Returns true for the `null` id.
    pub const fn is_null(&self) -> bool {
        matches!(self.0, IdRepr::Null)
    }

    /// Appends the id's JSON text.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match &self.0 {
            IdRepr::Null => out.extend_from_slice(b"null"),
            IdRepr::Num(n) => push_u64(out, *n),
            IdRepr::Raw(s) => out.extend_from_slice(s.as_bytes()),
        }
    }

    /// Returns the heap bytes owned by this id (0 for integers and `null`).
    pub fn heap_size(&self) -> usize {
        match &self.0 {
            IdRepr::Raw(s) => s.len(),
            _ => 0,
        }
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        self.write_json(&mut v);
        write!(f, "RequestId({})", String::from_utf8_lossy(&v))
    }
}

/// The methods a client may call, as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MethodKind {
    /// `mining.subscribe`.
    Subscribe,
    /// `mining.authorize`.
    Authorize,
    /// `mining.configure` (BIP 310).
    Configure,
    /// `mining.extranonce.subscribe`.
    ExtranonceSubscribe,
    /// `mining.suggest_difficulty`.
    SuggestDifficulty,
    /// `mining.submit`.
    Submit,
}

impl MethodKind {
    /// Returns the wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "mining.subscribe",
            Self::Authorize => "mining.authorize",
            Self::Configure => "mining.configure",
            Self::ExtranonceSubscribe => "mining.extranonce.subscribe",
            Self::SuggestDifficulty => "mining.suggest_difficulty",
            Self::Submit => "mining.submit",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "mining.submit" => Self::Submit,
            "mining.subscribe" => Self::Subscribe,
            "mining.authorize" => Self::Authorize,
            "mining.configure" => Self::Configure,
            "mining.extranonce.subscribe" => Self::ExtranonceSubscribe,
            "mining.suggest_difficulty" => Self::SuggestDifficulty,
            _ => return None,
        })
    }
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request's parameters were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParamError {
    /// The number of parameters is outside the method's range.
    #[error("expected {min} to {max} parameters, got {got}")]
    WrongCount {
        /// Fewest accepted.
        min: usize,
        /// Most accepted.
        max: usize,
        /// Number received.
        got: usize,
    },
    /// `params` is not an array.
    #[error("params is not an array")]
    NotAnArray,
    /// A parameter has the wrong JSON type.
    #[error("parameter {index} has the wrong type")]
    WrongType {
        /// Zero-based parameter index.
        index: usize,
    },
    /// A parameter is not valid hex, or has the wrong number of hex digits.
    #[error("parameter {index} is not valid hex of the expected length")]
    InvalidHex {
        /// Zero-based parameter index.
        index: usize,
    },
    /// A string parameter exceeds its limit.
    #[error("parameter {index} is {len} bytes, more than the limit of {limit}")]
    TooLong {
        /// Zero-based parameter index.
        index: usize,
        /// The limit in bytes.
        limit: usize,
        /// The length received.
        len: usize,
    },
    /// A number is out of range (a difficulty that is not finite and positive, for example).
    #[error("parameter {index} is out of range")]
    OutOfRange {
        /// Zero-based parameter index.
        index: usize,
    },
}

/// A request line that could not be turned into a typed request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Malformed: not UTF-8, not JSON, or not a JSON object. No id can be echoed.
    #[error("line is not a JSON-RPC object")]
    Malformed,
    /// Malformed: the id's JSON text exceeds [`MAX_REQUEST_ID_LEN`].
    #[error("request id is {len} bytes, more than the limit of {limit}")]
    IdTooLong {
        /// The limit.
        limit: usize,
        /// The length received.
        len: usize,
    },
    /// Protocol: the object has no string `method`.
    #[error("request has no method")]
    MissingMethod {
        /// The request id, to echo in the error reply.
        id: RequestId,
    },
    /// Protocol: a known method with invalid parameters.
    #[error("invalid parameters for {method}: {reason}")]
    InvalidParams {
        /// The request id, to echo in the error reply.
        id: RequestId,
        /// The method.
        method: MethodKind,
        /// What is wrong.
        reason: ParamError,
    },
}

impl ParseError {
    /// Returns the id to echo in the error reply (`null` when none could be read).
    pub fn id(&self) -> &RequestId {
        match self {
            Self::MissingMethod { id } | Self::InvalidParams { id, .. } => id,
            _ => &RequestId::NULL,
        }
    }
}

/// A parsed client request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    /// The id to echo.
    pub id: RequestId,
    /// The method and its typed parameters.
    pub method: Method<'a>,
}

/// A client method with its typed parameters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Method<'a> {
    /// `mining.subscribe [user_agent?, session_id?, host?, port?]`.
    Subscribe(Subscribe<'a>),
    /// `mining.authorize [username, password?]`.
    Authorize(Authorize<'a>),
    /// `mining.configure [[extensions], {params}]` (BIP 310).
    Configure(Configure),
    /// `mining.extranonce.subscribe []`.
    ExtranonceSubscribe,
    /// `mining.suggest_difficulty [difficulty]`.
    SuggestDifficulty(ShareDifficulty),
    /// `mining.submit [worker, job_id, extranonce2, ntime, nonce, version_bits?]`.
    Submit(Submit<'a>),
    /// Any other method (answered with error 20, never a disconnect).
    Unknown(Cow<'a, str>),
}

/// `mining.subscribe` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscribe<'a> {
    /// The miner's user agent, if sent.
    pub user_agent: Option<Cow<'a, str>>,
    /// A session id to resume, if sent (not honoured: extranonce1 is always fresh).
    pub session_id: Option<Cow<'a, str>>,
}

/// `mining.authorize` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorize<'a> {
    /// The username (address or account, often with a `.worker` suffix).
    pub username: Cow<'a, str>,
    /// The password, if sent.
    pub password: Option<Cow<'a, str>>,
}

/// `mining.submit` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit<'a> {
    /// The worker name.
    pub worker: Cow<'a, str>,
    /// The job id as sent (hex); resolved against the server's jobs by the session.
    pub job_id: Cow<'a, str>,
    /// The extranonce2 bytes (length is checked against the session's size by the server).
    pub extranonce2: Extranonce2,
    /// The header time.
    pub ntime: u32,
    /// The header nonce.
    pub nonce: u32,
    /// The version-rolling bits (BIP 310), if sent.
    pub version_bits: Option<u32>,
}

/// `mining.configure` parameters: the requested extensions, in request order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Configure {
    /// The extensions, in the order requested.
    pub extensions: Vec<Extension>,
}

/// One `mining.configure` extension request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Extension {
    /// `version-rolling` with the miner's mask and minimum bit count.
    VersionRolling {
        /// `version-rolling.mask` (default `ffffffff`).
        mask: u32,
        /// `version-rolling.min-bit-count` (default 0).
        min_bit_count: u32,
    },
    /// `minimum-difficulty` with its value.
    MinimumDifficulty(ShareDifficulty),
    /// `subscribe-extranonce`.
    SubscribeExtranonce,
    /// Any other extension (answered `false`).
    Unknown(String),
}

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<&'a RawValue>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

struct Params<'a> {
    items: [Option<&'a RawValue>; MAX_PARAMS],
    len: usize,
}

impl<'a> Params<'a> {
    fn get(&self, i: usize) -> Option<&'a RawValue> {
        self.items
            .get(i)
            .copied()
            .flatten()
            .filter(|r| r.get() != "null")
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Params<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Params<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut p = Params {
                    items: [None; MAX_PARAMS],
                    len: 0,
                };
                loop {
                    if p.len >= MAX_PARAMS {
                        // Count, but do not store, the rest.
                        while seq.next_element::<IgnoredAny>()?.is_some() {
                            p.len = p.len.saturating_add(1);
                        }
                        return Ok(p);
                    }
                    match seq.next_element::<&'a RawValue>()? {
                        Some(v) => {
                            if let Some(slot) = p.items.get_mut(p.len) {
                                *slot = Some(v);
                            }
                            p.len = p.len.saturating_add(1);
                        }
                        None => return Ok(p),
                    }
                }
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// Returns the string a raw JSON value holds, borrowing when it has no escapes.
fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

fn raw_f64(raw: &RawValue) -> Option<f64> {
    match raw_str(raw) {
        Some(s) => s.trim().parse::<f64>().ok(),
        None => serde_json::from_str::<f64>(raw.get()).ok(),
    }
}

/// Parses exactly eight hex digits into a big-endian `u32`.
fn hex_u32_exact(s: &str) -> Option<u32> {
    btq_core::hex::decode_array::<4>(s)
        .ok()
        .map(u32::from_be_bytes)
}

/// Parses one to eight hex digits into a `u32`.
fn hex_u32_loose(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

struct Ctx<'a> {
    id: RequestId,
    method: MethodKind,
    params: Params<'a>,
}

impl<'a> Ctx<'a> {
    fn err(&self, reason: ParamError) -> ParseError {
        ParseError::InvalidParams {
            id: self.id.clone(),
            method: self.method,
            reason,
        }
    }

    fn count(&self, min: usize, max: usize) -> Result<(), ParseError> {
        let got = self.params.len;
        if got < min || got > max {
            return Err(self.err(ParamError::WrongCount { min, max, got }));
        }
        Ok(())
    }

    fn string(&self, index: usize, limit: usize) -> Result<Option<Cow<'a, str>>, ParseError> {
        let Some(raw) = self.params.get(index) else {
            return Ok(None);
        };
        let s = raw_str(raw).ok_or_else(|| self.err(ParamError::WrongType { index }))?;
        if s.len() > limit {
            return Err(self.err(ParamError::TooLong {
                index,
                limit,
                len: s.len(),
            }));
        }
        Ok(Some(s))
    }

    fn required_string(&self, index: usize, limit: usize) -> Result<Cow<'a, str>, ParseError> {
        self.string(index, limit)?
            .ok_or_else(|| self.err(ParamError::WrongType { index }))
    }
}

/// Parses one request line (without its `\n`; a trailing `\r` is tolerated).
///
/// # Errors
/// [`ParseError`]: malformed JSON, an over-long id, a missing method, or invalid parameters for
/// a known method. Unknown methods are not errors: they parse as [`Method::Unknown`].
pub fn parse_request(line: &[u8]) -> Result<Request<'_>, ParseError> {
    // Only objects: serde would also read a struct from an array.
    if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ParseError::Malformed);
    }
    let env: Envelope<'_> = serde_json::from_slice(line).map_err(|_| ParseError::Malformed)?;
    let id = RequestId::from_raw(env.id)?;
    let Some(name) = env.method.and_then(raw_str) else {
        return Err(ParseError::MissingMethod { id });
    };
    let Some(kind) = MethodKind::from_name(&name) else {
        return Ok(Request {
            id,
            method: Method::Unknown(name),
        });
    };
    let params = match env.params {
        None => Params {
            items: [None; MAX_PARAMS],
            len: 0,
        },
        Some(raw) if raw.get() == "null" => Params {
            items: [None; MAX_PARAMS],
            len: 0,
        },
        Some(raw) => match serde_json::from_str::<Params<'_>>(raw.get()) {
            Ok(p) => p,
            Err(_) => {
                return Err(ParseError::InvalidParams {
                    id,
                    method: kind,
                    reason: ParamError::NotAnArray,
                });
            }
        },
    };
    let cx = Ctx {
        id,
        method: kind,
        params,
    };
    let method = match kind {
        MethodKind::Submit => Method::Submit(parse_submit(&cx)?),
        MethodKind::Subscribe => {
            cx.count(0, 4)?;
            Method::Subscribe(Subscribe {
                user_agent: cx.string(0, MAX_USER_AGENT_LEN)?,
                session_id: cx.string(1, MAX_USER_AGENT_LEN)?,
            })
        }
        MethodKind::Authorize => {
            cx.count(1, 2)?;
            let username = cx.required_string(0, MAX_USERNAME_LEN)?;
            if username.is_empty() {
                return Err(cx.err(ParamError::WrongType { index: 0 }));
            }
            let password = cx.string(1, MAX_PASSWORD_LEN)?;
            Method::Authorize(Authorize { username, password })
        }
        MethodKind::ExtranonceSubscribe => {
            cx.count(0, 0)?;
            Method::ExtranonceSubscribe
        }
        MethodKind::SuggestDifficulty => {
            cx.count(1, 1)?;
            let raw = cx
                .params
                .get(0)
                .ok_or_else(|| cx.err(ParamError::WrongType { index: 0 }))?;
            let d = raw_f64(raw).ok_or_else(|| cx.err(ParamError::WrongType { index: 0 }))?;
            let d =
                ShareDifficulty::new(d).map_err(|_| cx.err(ParamError::OutOfRange { index: 0 }))?;
            Method::SuggestDifficulty(d)
        }
        MethodKind::Configure => Method::Configure(parse_configure(&cx)?),
    };
    Ok(Request { id: cx.id, method })
}

fn parse_submit<'a>(cx: &Ctx<'a>) -> Result<Submit<'a>, ParseError> {
    cx.count(5, 6)?;
    let worker = cx.required_string(0, MAX_USERNAME_LEN)?;
    let job_id = cx.required_string(1, MAX_JOB_ID_LEN)?;
    let en2 = cx.required_string(2, 2 * MAX_EXTRANONCE_SIZE)?;
    let mut buf = [0u8; MAX_EXTRANONCE_SIZE];
    if en2.is_empty() || en2.len() % 2 != 0 {
        return Err(cx.err(ParamError::InvalidHex { index: 2 }));
    }
    let n = en2.len() / 2;
    let dst = buf
        .get_mut(..n)
        .ok_or_else(|| cx.err(ParamError::InvalidHex { index: 2 }))?;
    decode_hex_into(&en2, dst).ok_or_else(|| cx.err(ParamError::InvalidHex { index: 2 }))?;
    let extranonce2 = ExtranonceBytes::from_slice(dst)
        .map_err(|_| cx.err(ParamError::InvalidHex { index: 2 }))?;
    let ntime = cx.required_string(3, 8)?;
    let ntime = hex_u32_exact(&ntime).ok_or_else(|| cx.err(ParamError::InvalidHex { index: 3 }))?;
    let nonce = cx.required_string(4, 8)?;
    let nonce = hex_u32_exact(&nonce).ok_or_else(|| cx.err(ParamError::InvalidHex { index: 4 }))?;
    let version_bits = match cx.string(5, 8)? {
        None => None,
        Some(v) => {
            Some(hex_u32_loose(&v).ok_or_else(|| cx.err(ParamError::InvalidHex { index: 5 }))?)
        }
    };
    Ok(Submit {
        worker,
        job_id,
        extranonce2,
        ntime,
        nonce,
        version_bits,
    })
}

fn decode_hex_into(s: &str, out: &mut [u8]) -> Option<()> {
    const fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.len() != out.len().checked_mul(2)? {
        return None;
    }
    for (pair, o) in b.chunks_exact(2).zip(out.iter_mut()) {
        let (hi, lo) = match pair {
            [h, l] => (nib(*h)?, nib(*l)?),
            _ => return None,
        };
        *o = (hi << 4) | lo;
    }
    Some(())
}

fn parse_configure(cx: &Ctx<'_>) -> Result<Configure, ParseError> {
    cx.count(1, 2)?;
    let names_raw = cx
        .params
        .get(0)
        .ok_or_else(|| cx.err(ParamError::WrongType { index: 0 }))?;
    let names: Vec<&RawValue> = serde_json::from_str(names_raw.get())
        .map_err(|_| cx.err(ParamError::WrongType { index: 0 }))?;
    if names.len() > MAX_CONFIGURE_EXTENSIONS {
        return Err(cx.err(ParamError::TooLong {
            index: 0,
            limit: MAX_CONFIGURE_EXTENSIONS,
            len: names.len(),
        }));
    }
    let opts: serde_json::Map<String, serde_json::Value> = match cx.params.get(1) {
        None => serde_json::Map::new(),
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| cx.err(ParamError::WrongType { index: 1 }))?,
    };
    let opt_str = |k: &str| opts.get(k).and_then(serde_json::Value::as_str);
    let mut extensions = Vec::with_capacity(names.len());
    for raw in names {
        let name = raw_str(raw).ok_or_else(|| cx.err(ParamError::WrongType { index: 0 }))?;
        if name.len() > MAX_EXTENSION_NAME_LEN {
            return Err(cx.err(ParamError::TooLong {
                index: 0,
                limit: MAX_EXTENSION_NAME_LEN,
                len: name.len(),
            }));
        }
        let ext = match &*name {
            "version-rolling" => {
                let mask = match opt_str("version-rolling.mask") {
                    None => u32::MAX,
                    Some(s) => hex_u32_loose(s)
                        .ok_or_else(|| cx.err(ParamError::InvalidHex { index: 1 }))?,
                };
                let min_bit_count = match opts.get("version-rolling.min-bit-count") {
                    None => 0,
                    Some(v) => v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| cx.err(ParamError::OutOfRange { index: 1 }))?,
                };
                Extension::VersionRolling {
                    mask,
                    min_bit_count,
                }
            }
            "minimum-difficulty" => {
                let v = opts
                    .get("minimum-difficulty.value")
                    .and_then(serde_json::Value::as_f64)
                    .ok_or_else(|| cx.err(ParamError::WrongType { index: 1 }))?;
                let d = ShareDifficulty::new(v)
                    .map_err(|_| cx.err(ParamError::OutOfRange { index: 1 }))?;
                Extension::MinimumDifficulty(d)
            }
            "subscribe-extranonce" => Extension::SubscribeExtranonce,
            other => Extension::Unknown(other.to_owned()),
        };
        extensions.push(ext);
    }
    Ok(Configure { extensions })
}

// ---------------------------------------------------------------------------------------------
// Errors on the wire

/// The customary Stratum error codes (slush convention; `stratum-v1.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 20: other or unknown error.
    Other,
    /// 21: job not found (stale).
    JobNotFound,
    /// 22: duplicate share.
    Duplicate,
    /// 23: low difficulty share.
    LowDifficulty,
    /// 24: unauthorized worker.
    Unauthorized,
    /// 25: not subscribed.
    NotSubscribed,
}

impl ErrorCode {
    /// Returns the numeric code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Other => 20,
            Self::JobNotFound => 21,
            Self::Duplicate => 22,
            Self::LowDifficulty => 23,
            Self::Unauthorized => 24,
            Self::NotSubscribed => 25,
        }
    }
}

/// An error sent to the miner: a code and a fixed message (never text from the peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StratumError {
    /// The code.
    pub code: ErrorCode,
    /// The message.
    pub message: &'static str,
}

impl StratumError {
    /// Creates an error.
    pub const fn new(code: ErrorCode, message: &'static str) -> Self {
        Self { code, message }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i = i.saturating_sub(1);
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0'.saturating_add(u8::try_from(n % 10).unwrap_or(0));
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(i..).unwrap_or(&[]));
}

pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const D: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(D.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
        out.push(D.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
    }
}

pub(crate) fn push_hex_u32(out: &mut Vec<u8>, v: u32) {
    push_hex(out, &v.to_be_bytes());
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let plain = s
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f);
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn push_difficulty(out: &mut Vec<u8>, d: ShareDifficulty) {
    // `Display` for f64 never uses exponents: plain decimals, as miners expect.
    let _ = write!(out, "{}", d.get());
}

/// Appends `{"id":<id>,"result":<true|false>,"error":null}\n`.
pub fn encode_result_bool(out: &mut Vec<u8>, id: &RequestId, value: bool) {
    out.extend_from_slice(b"{\"id\":");
    id.write_json(out);
    out.extend_from_slice(if value {
        b",\"result\":true,\"error\":null}\n"
    } else {
        b",\"result\":false,\"error\":null}\n"
    });
}

/// Appends `{"id":<id>,"result":null,"error":[code,"message",null]}\n`.
pub fn encode_error(out: &mut Vec<u8>, id: &RequestId, err: StratumError) {
    out.extend_from_slice(b"{\"id\":");
    id.write_json(out);
    out.extend_from_slice(b",\"result\":null,\"error\":[");
    push_u64(out, u64::from(err.code.code()));
    out.push(b',');
    push_json_str(out, err.message);
    out.extend_from_slice(b",null]}\n");
}

/// Appends the `mining.subscribe` result:
/// `[[["mining.set_difficulty",sid],["mining.notify",sid]],extranonce1,extranonce2_size]`.
pub fn encode_subscribe_result(
    out: &mut Vec<u8>,
    id: &RequestId,
    extranonce1: &Extranonce1,
    extranonce2_size: u8,
) {
    out.extend_from_slice(b"{\"id\":");
    id.write_json(out);
    out.extend_from_slice(b",\"result\":[[[\"mining.set_difficulty\",\"");
    push_hex(out, extranonce1.as_bytes());
    out.extend_from_slice(b"\"],[\"mining.notify\",\"");
    push_hex(out, extranonce1.as_bytes());
    out.extend_from_slice(b"\"]],\"");
    push_hex(out, extranonce1.as_bytes());
    out.extend_from_slice(b"\",");
    push_u64(out, u64::from(extranonce2_size));
    out.extend_from_slice(b"],\"error\":null}\n");
}

/// The server's answer to one `mining.configure` extension.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigureResult {
    /// `"version-rolling":true,"version-rolling.mask":"<mask>"`.
    VersionRolling(u32),
    /// `"version-rolling":false` (the mask intersection has too few bits).
    VersionRollingRefused,
    /// `"minimum-difficulty":<accepted>`.
    MinimumDifficulty(bool),
    /// `"subscribe-extranonce":true`.
    SubscribeExtranonce,
    /// `"<name>":false`.
    Unsupported(String),
}

/// Appends the `mining.configure` result object, one entry per requested extension.
pub fn encode_configure_result(out: &mut Vec<u8>, id: &RequestId, results: &[ConfigureResult]) {
    out.extend_from_slice(b"{\"id\":");
    id.write_json(out);
    out.extend_from_slice(b",\"result\":{");
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match r {
            ConfigureResult::VersionRolling(mask) => {
                out.extend_from_slice(b"\"version-rolling\":true,\"version-rolling.mask\":\"");
                push_hex_u32(out, *mask);
                out.push(b'"');
            }
            ConfigureResult::VersionRollingRefused => {
                out.extend_from_slice(b"\"version-rolling\":false");
            }
            ConfigureResult::MinimumDifficulty(ok) => {
                out.extend_from_slice(if *ok {
                    b"\"minimum-difficulty\":true"
                } else {
                    b"\"minimum-difficulty\":false"
                });
            }
            ConfigureResult::SubscribeExtranonce => {
                out.extend_from_slice(b"\"subscribe-extranonce\":true");
            }
            ConfigureResult::Unsupported(name) => {
                push_json_str(out, name);
                out.extend_from_slice(b":false");
            }
        }
    }
    out.extend_from_slice(b"},\"error\":null}\n");
}

/// A server-to-client notification other than `mining.notify` (see [`crate::Job`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notification<'a> {
    /// `mining.set_difficulty [difficulty]`.
    SetDifficulty(ShareDifficulty),
    /// `mining.set_extranonce [extranonce1, extranonce2_size]`.
    SetExtranonce {
        /// The new extranonce1.
        extranonce1: Extranonce1,
        /// The extranonce2 size.
        extranonce2_size: u8,
    },
    /// `mining.set_version_mask [mask]`.
    SetVersionMask(u32),
    /// `client.reconnect [host?, port?, wait_seconds?]`.
    Reconnect {
        /// The host to connect to (the same one if `None`).
        host: Option<&'a str>,
        /// The port.
        port: Option<u16>,
        /// Seconds to wait before reconnecting.
        wait_secs: Option<u32>,
    },
    /// `client.show_message [message]`.
    ShowMessage(&'a str),
}

impl Notification<'_> {
    /// Appends the notification line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":null,\"method\":\"");
        match self {
            Self::SetDifficulty(d) => {
                out.extend_from_slice(b"mining.set_difficulty\",\"params\":[");
                push_difficulty(out, *d);
            }
            Self::SetExtranonce {
                extranonce1,
                extranonce2_size,
            } => {
                out.extend_from_slice(b"mining.set_extranonce\",\"params\":[\"");
                push_hex(out, extranonce1.as_bytes());
                out.extend_from_slice(b"\",");
                push_u64(out, u64::from(*extranonce2_size));
            }
            Self::SetVersionMask(mask) => {
                out.extend_from_slice(b"mining.set_version_mask\",\"params\":[\"");
                push_hex_u32(out, *mask);
                out.push(b'"');
            }
            Self::Reconnect {
                host,
                port,
                wait_secs,
            } => {
                out.extend_from_slice(b"client.reconnect\",\"params\":[");
                if host.is_some() || port.is_some() || wait_secs.is_some() {
                    match host {
                        Some(h) => push_json_str(out, h),
                        None => out.extend_from_slice(b"null"),
                    }
                    out.push(b',');
                    match port {
                        Some(p) => push_u64(out, u64::from(*p)),
                        None => out.extend_from_slice(b"null"),
                    }
                    if let Some(w) = wait_secs {
                        out.push(b',');
                        push_u64(out, u64::from(*w));
                    }
                }
            }
            Self::ShowMessage(m) => {
                out.extend_from_slice(b"client.show_message\",\"params\":[");
                push_json_str(out, m);
            }
        }
        out.extend_from_slice(b"]}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(line: &str) -> Result<Request<'_>, ParseError> {
        parse_request(line.as_bytes())
    }

    #[test]
    fn submit_parses() {
        let r = s(r#"{"id":4,"method":"mining.submit","params":["w.1","1a","00000001","5f5e1000","deadbeef"]}"#).unwrap();
        assert_eq!(r.id, RequestId::from_u64(4));
        let Method::Submit(sub) = r.method else {
            panic!()
        };
        assert_eq!(sub.worker, "w.1");
        assert_eq!(sub.job_id, "1a");
        assert_eq!(sub.extranonce2.as_bytes(), &[0, 0, 0, 1]);
        assert_eq!(sub.ntime, 0x5f5e_1000);
        assert_eq!(sub.nonce, 0xdead_beef);
        assert_eq!(sub.version_bits, None);
        assert!(matches!(sub.worker, Cow::Borrowed(_)));
    }

    #[test]
    fn ids_are_verbatim() {
        for id in ["1", "\"abc\"", "-5", "1.5", "[1,2]", "{\"a\":1}"] {
            let line = format!(r#"{{"id":{id},"method":"x","params":[]}}"#);
            let r = s(&line).unwrap();
            let mut out = Vec::new();
            r.id.write_json(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), id);
        }
        let long = format!(r#"{{"id":"{}","method":"x"}}"#, "a".repeat(100));
        assert!(matches!(s(&long), Err(ParseError::IdTooLong { .. })));
        assert!(s(r#"{"method":"x"}"#).unwrap().id.is_null());
    }

    #[test]
    fn errors() {
        assert_eq!(s("not json"), Err(ParseError::Malformed));
        assert_eq!(s("[1,2]"), Err(ParseError::Malformed));
        assert!(matches!(
            s(r#"{"id":1}"#),
            Err(ParseError::MissingMethod { .. })
        ));
        let e = s(r#"{"id":1,"method":"mining.submit","params":["a"]}"#).unwrap_err();
        assert!(matches!(
            e,
            ParseError::InvalidParams {
                reason: ParamError::WrongCount {
                    min: 5,
                    max: 6,
                    got: 1
                },
                ..
            }
        ));
        assert_eq!(e.id(), &RequestId::from_u64(1));
        let e =
            s(r#"{"id":1,"method":"mining.submit","params":["a","1","zz","00000000","00000000"]}"#)
                .unwrap_err();
        assert!(matches!(
            e,
            ParseError::InvalidParams {
                reason: ParamError::InvalidHex { index: 2 },
                ..
            }
        ));
        let many = format!(
            r#"{{"id":1,"method":"mining.submit","params":[{}]}}"#,
            ["1"; 40].join(",")
        );
        assert!(matches!(
            s(&many),
            Err(ParseError::InvalidParams {
                reason: ParamError::WrongCount { got: 40, .. },
                ..
            })
        ));
    }

    #[test]
    fn configure_parses() {
        let r = s(r#"{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty","foo"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2,"minimum-difficulty.value":2048}]}"#).unwrap();
        let Method::Configure(c) = r.method else {
            panic!()
        };
        assert_eq!(
            c.extensions,
            vec![
                Extension::VersionRolling {
                    mask: 0x1fff_e000,
                    min_bit_count: 2
                },
                Extension::MinimumDifficulty(ShareDifficulty::new(2048.0).unwrap()),
                Extension::Unknown("foo".into()),
            ]
        );
    }

    #[test]
    fn encoders() {
        let mut out = Vec::new();
        encode_error(
            &mut out,
            &RequestId::from_u64(3),
            StratumError::new(ErrorCode::Duplicate, "Duplicate share"),
        );
        assert_eq!(
            out,
            b"{\"id\":3,\"result\":null,\"error\":[22,\"Duplicate share\",null]}\n"
        );
        out.clear();
        Notification::SetDifficulty(ShareDifficulty::new(0.00015).unwrap()).encode(&mut out);
        assert_eq!(
            out,
            b"{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[0.00015]}\n"
        );
        out.clear();
        Notification::ShowMessage("hi \"there\"\n").encode(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["params"][0], "hi \"there\"\n");
        out.clear();
        Notification::Reconnect {
            host: Some("h"),
            port: Some(3333),
            wait_secs: Some(5),
        }
        .encode(&mut out);
        assert_eq!(
            out,
            b"{\"id\":null,\"method\":\"client.reconnect\",\"params\":[\"h\",3333,5]}\n"
        );
        let mut n = Vec::new();
        push_u64(&mut n, u64::MAX);
        assert_eq!(n, u64::MAX.to_string().as_bytes());
        n.clear();
        push_u64(&mut n, 0);
        assert_eq!(n, b"0");
    }
}
