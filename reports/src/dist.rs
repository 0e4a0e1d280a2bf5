//! The values a group keeps: [`Dist`] (the exact values while few, an HdrHistogram beyond),
//! [`Mean`] and [`Rate`]. Each merges with another of its kind by addition.

use hdrhistogram::Histogram;

/// A distribution keeps its exact values up to this many; beyond it, only the histogram.
pub const EXACT_CAP: usize = 2_000;

/// One numeric distribution: the exact values while there are few, a histogram beyond. The
/// histogram is built only when the exact values no longer suffice (past [`EXACT_CAP`], or at
/// the first value of a distribution that keeps none): a report folds every file into its own
/// groups before merging them, and most of those hold a few dozen values.
#[derive(Debug, Clone)]
pub struct Dist {
    hist: Option<Histogram<u32>>,
    sigfig: u8,
    /// Units per histogram step: values are stored as `round(v × scale)`.
    scale: f64,
    /// Every value, while there are at most [`EXACT_CAP`] (`None` past it, or for a
    /// distribution that keeps none).
    exact: Option<Vec<f64>>,
}

impl Dist {
    /// A distribution of values in seconds (stored to the microsecond, 3 significant digits).
    pub fn seconds() -> Dist {
        Dist::new(1e6, 3, true)
    }

    /// A distribution of speeds in tokens per second (stored to 0.001 tok/s).
    pub fn speed() -> Dist {
        Dist::new(1e3, 3, true)
    }

    /// A cheap seconds distribution for time buckets: whole milliseconds, 2 significant digits,
    /// no exact values (a few KiB, where a microsecond one takes about 9).
    pub fn coarse_seconds() -> Dist {
        Dist::new(1e3, 2, false)
    }

    fn new(scale: f64, sigfig: u8, exact: bool) -> Dist {
        Dist {
            hist: None,
            sigfig,
            scale,
            exact: exact.then(Vec::new),
        }
    }

    fn record(h: &mut Histogram<u32>, scale: f64, v: f64) {
        let v_scaled = (v * scale).round() as u64;
        // `record` grows an auto-resizing histogram; saturate only if it cannot.
        if h.record(v_scaled).is_err() {
            h.saturating_record(v_scaled);
        }
    }

    /// The histogram of every value: the one kept, or one built from the exact values.
    fn histogram(&self) -> std::borrow::Cow<'_, Histogram<u32>> {
        match &self.hist {
            Some(h) => std::borrow::Cow::Borrowed(h),
            None => {
                let mut h =
                    Histogram::new(self.sigfig).expect("2 or 3 significant digits are valid");
                for v in self.exact.iter().flatten() {
                    Dist::record(&mut h, self.scale, *v);
                }
                std::borrow::Cow::Owned(h)
            }
        }
    }

    /// From here on the histogram is kept: built from the exact values if it was not yet.
    fn keep_histogram(&mut self) -> &mut Histogram<u32> {
        if self.hist.is_none() {
            self.hist = Some(self.histogram().into_owned());
        }
        self.hist.as_mut().expect("set above")
    }

    /// Adds one value; negative, infinite and NaN values are not measurements and are dropped.
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() || v < 0.0 {
            return;
        }
        if let Some(exact) = &mut self.exact {
            if exact.len() < EXACT_CAP {
                exact.push(v);
                return;
            }
            self.keep_histogram();
            self.exact = None;
        }
        let scale = self.scale;
        Dist::record(self.keep_histogram(), scale, v);
    }

    /// Adds every value of `other` (same kind of distribution).
    pub fn merge(&mut self, other: &Dist) {
        if self.hist.is_none() && other.hist.is_none() {
            match (&mut self.exact, &other.exact) {
                (Some(a), Some(b)) if a.len() + b.len() <= EXACT_CAP => {
                    a.extend_from_slice(b);
                    return;
                }
                (None, None) => return,
                _ => {}
            }
        }
        let theirs = other.histogram();
        // Both histograms auto-resize, so adding cannot fail for lack of range.
        let _ = self.keep_histogram().add(theirs.as_ref());
        self.exact = None;
    }

    pub fn len(&self) -> u64 {
        match (&self.hist, &self.exact) {
            (Some(h), _) => h.len(),
            (None, Some(e)) => e.len() as u64,
            (None, None) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The exact values, sorted, when every value is still kept.
    pub fn exact_sorted(&self) -> Option<Vec<f64>> {
        let mut v = self.exact.clone()?;
        v.sort_by(f64::total_cmp);
        Some(v)
    }

    /// The value at quantile `q` in [0, 1] read off the histogram (highest value equivalent to
    /// the bucket, within the histogram's precision).
    pub fn hist_quantile(&self, q: f64) -> Option<f64> {
        if self.is_empty() {
            return None;
        }
        let h = self.histogram();
        let v = h.value_at_quantile(q.clamp(0.0, 1.0));
        Some(h.median_equivalent(v) as f64 / self.scale)
    }

    /// The histogram's mean.
    pub fn mean(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.histogram().mean() / self.scale)
    }
}

/// A running mean, with the sum of squares for its interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
    pub sum: f64,
    pub sq: f64,
    pub n: u64,
}

impl Mean {
    pub fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.sq += v * v;
            self.n += 1;
        }
    }
    pub fn merge(&mut self, o: &Mean) {
        self.sum += o.sum;
        self.sq += o.sq;
        self.n += o.n;
    }
    pub fn value(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
    /// The 95% interval of the mean (normal approximation, sample standard deviation); `None`
    /// below two values.
    pub fn ci95(&self) -> Option<(f64, f64)> {
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        let mean = self.sum / n;
        let var = ((self.sq - n * mean * mean) / (n - 1.0)).max(0.0);
        let half = llmpulse_core::stats::Z95 * (var / n).sqrt();
        Some((mean - half, mean + half))
    }
}

/// Successes out of trials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    pub ok: u64,
    pub n: u64,
}

impl Rate {
    pub fn add(&mut self, v: Option<bool>) {
        if let Some(v) = v {
            self.n += 1;
            self.ok += u64::from(v);
        }
    }
    pub fn merge(&mut self, o: &Rate) {
        self.ok += o.ok;
        self.n += o.n;
    }
}
