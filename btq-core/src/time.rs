//! Time as values: Sans-IO cores never read a clock.

/// Monotonic time in milliseconds since an epoch chosen by the driver.
///
/// A `Timestamp` can be serialised into logs and replayed, which an `Instant` cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The driver's epoch.
    pub const ZERO: Self = Self(0);

    /// Creates a timestamp from milliseconds since the driver's epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Returns the milliseconds since the driver's epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Returns `self + ms`, saturating at the maximum.
    #[must_use]
    pub const fn saturating_add_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Returns the milliseconds elapsed from `earlier` to `self`, or 0 if `earlier` is later.
    pub const fn saturating_millis_since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Wall-clock time in seconds since the Unix epoch, as used by block headers (`nTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(u64);

impl UnixTime {
    /// Creates a Unix time from seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// Returns the seconds since the Unix epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }
}
