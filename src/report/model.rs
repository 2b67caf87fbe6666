//! The report's building blocks: topologies, nodes and their maps (spec §3–§5).
//!
//! Owns the in-memory shape of every Scope type below [`Report`](super::Report) and their
//! accessors. Every map is a vector sorted by key (byte order, like Go's string comparison), so
//! lookups are binary searches, merges are merge-joins that move values, and encoding order is
//! deterministic. Strings are [`Str`] borrowed from the decoded body. What a decoded report
//! cannot borrow from its body (a node's maps, sets, sample lists) may be a slice in a
//! [`DecodeArena`] instead of a vector of its own, behind the same API: reading it is the same,
//! and changing it first copies it out. Decoding, merging and encoding live in their own
//! modules.

use std::borrow::Cow;

use super::Str;
use super::arena::DecodeArena;
use super::time::Time;

/// A map from string keys to `V`, sorted by key with unique keys.
///
/// A decoded node's maps live in the report's [`DecodeArena`] when there is one; any change
/// that needs the map's own vector first copies them out.
#[derive(Clone)]
pub struct SortedMap<'a, V> {
    /// Invariant: strictly increasing keys.
    entries: Stored<'a, (Str<'a>, V)>,
}

/// A collection's items: a vector of its own, or a slice in a [`DecodeArena`], which never
/// drops them (only values that own no heap memory go there: [`InArena`]).
#[derive(Clone, Debug)]
enum Stored<'a, T> {
    Heap(Vec<T>),
    Arena(&'a [T]),
}

impl<T> Default for Stored<'_, T> {
    fn default() -> Self {
        Stored::Heap(Vec::new())
    }
}

impl<T> Stored<'_, T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Stored::Heap(items) => items,
            Stored::Arena(items) => items,
        }
    }

    /// Whether dropping the items' storage would free nothing.
    fn owns_no_heap(&self) -> bool {
        match self {
            Stored::Heap(items) => items.capacity() == 0,
            Stored::Arena(_) => true,
        }
    }
}

impl<T: Clone> Stored<'_, T> {
    /// The items in a vector of their own.
    fn into_vec(self) -> Vec<T> {
        match self {
            Stored::Heap(items) => items,
            Stored::Arena(items) => items.to_vec(),
        }
    }

    /// The items in a vector of their own, with room for `extra` more.
    fn into_vec_reserving(self, extra: usize) -> Vec<T> {
        match self {
            Stored::Heap(mut items) => {
                items.reserve(extra);
                items
            }
            Stored::Arena(items) => {
                let mut copy = Vec::with_capacity(items.len() + extra);
                copy.extend_from_slice(items);
                copy
            }
        }
    }

    /// The items' own vector, copied out of the arena first if they are there. Never `None`;
    /// an `Option` only because the borrow checker cannot see that.
    #[inline]
    fn heap(&mut self) -> Option<&mut Vec<T>> {
        if matches!(self, Stored::Arena(_)) {
            self.copy_out_of_arena();
        }
        match self {
            Stored::Heap(items) => Some(items),
            Stored::Arena(_) => None,
        }
    }

    /// Out of line: decoders fill collections on the heap, and this is the rare change to a
    /// decoded one.
    #[cold]
    #[inline(never)]
    fn copy_out_of_arena(&mut self) {
        if let Stored::Arena(items) = *self {
            *self = Stored::Heap(items.to_vec());
        }
    }
}

/// Values that a decoder may put in a [`DecodeArena`], where nothing is dropped: those it
/// decodes own no heap memory ([`InArena::owns_no_heap`] checks that in debug builds).
pub(crate) trait InArena: Clone {
    /// Whether dropping this value would free nothing (so leaving it undropped leaks nothing).
    fn owns_no_heap(&self) -> bool;
}

/// Whether dropping `s` would free nothing: borrowed, or empty without a heap block (as
/// `Str::default()` is).
fn str_owns_no_heap(s: &Str<'_>) -> bool {
    match s {
        Cow::Borrowed(_) => true,
        Cow::Owned(s) => s.capacity() == 0,
    }
}

impl<V> Default for SortedMap<'_, V> {
    fn default() -> Self {
        SortedMap {
            entries: Stored::default(),
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for SortedMap<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: PartialEq> PartialEq for SortedMap<'_, V> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<'a, V> SortedMap<'a, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for `capacity` entries.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        SortedMap {
            entries: Stored::Heap(Vec::with_capacity(capacity)),
        }
    }

    fn as_slice(&self) -> &[(Str<'a>, V)] {
        self.entries.as_slice()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.as_slice()
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).ok().map(|i| &self.as_slice()[i].1)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        match &mut self.entries {
            Stored::Heap(entries) => entries.clear(),
            Stored::Arena(_) => self.entries = Stored::default(),
        }
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Str<'a>, &V)> + '_ {
        self.as_slice().iter().map(|(k, v)| (k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.as_slice().iter().map(|(k, _)| k.as_ref())
    }

    /// Builds from entries that must already be sorted by unique key (merge output).
    pub(crate) fn from_sorted(entries: Vec<(Str<'a>, V)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        SortedMap {
            entries: Stored::Heap(entries),
        }
    }
}

impl<'a, V: Clone> SortedMap<'a, V> {
    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let i = self.find(key).ok()?;
        self.entries.heap()?.get_mut(i).map(|(_, v)| v)
    }

    /// Inserts or replaces the value under `key`; returns the replaced value. (`Into`, so that
    /// a node goes into [`Nodes`] without boxing it first.)
    pub fn insert(&mut self, key: impl Into<Str<'a>>, value: impl Into<V>) -> Option<V> {
        let (key, value) = (key.into(), value.into());
        let found = self.find(&key);
        let entries = self.entries.heap()?;
        match found {
            Ok(i) => Some(std::mem::replace(&mut entries[i].1, value)),
            Err(i) => {
                entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let i = self.find(key).ok()?;
        Some(self.entries.heap()?.remove(i).1)
    }

    /// Entries in key order, values mutable.
    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (&Str<'a>, &mut V)> + '_ {
        let entries: &mut [(Str<'a>, V)] = match self.entries.heap() {
            Some(entries) => entries,
            None => &mut [],
        };
        entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// The slot for `key`, created with `V::default()` when missing. Decoders fill values
    /// through this so a later duplicate key is decoded over the earlier value (spec §4.2). The
    /// common case, keys arriving in sorted order, is an append. (`None` never happens; see
    /// `Stored::heap`.)
    pub(crate) fn slot(&mut self, key: Str<'a>) -> Option<&mut V>
    where
        V: Default,
    {
        let entries = self.entries.heap()?;
        let at = match entries.last() {
            Some((last, _)) if last.as_ref() < key.as_ref() => entries.len(),
            None => 0,
            _ => match entries.binary_search_by(|(k, _)| k.as_ref().cmp(&key)) {
                Ok(i) => return entries.get_mut(i).map(|(_, v)| v),
                Err(i) => i,
            },
        };
        entries.insert(at, (key, V::default()));
        entries.get_mut(at).map(|(_, v)| v)
    }

    /// The entries, moved into a map of their own at their exact size: into `arena` when there
    /// is one (values that own no heap memory only), else into a vector exactly as long as
    /// needed. `self` is left empty with its capacity, for reuse as scratch space.
    pub(crate) fn drain_exact(&mut self, arena: Option<&'a DecodeArena>) -> Self
    where
        V: InArena,
    {
        let Some(entries) = self.entries.heap() else {
            return SortedMap::new();
        };
        let Some(arena) = arena else {
            let mut exact = Vec::with_capacity(entries.len());
            exact.append(entries);
            return SortedMap::from_sorted(exact);
        };
        debug_assert!(
            entries
                .iter()
                .all(|(k, v)| str_owns_no_heap(k) && v.owns_no_heap()),
            "only values that own no heap memory go into the arena"
        );
        let in_arena = arena.entries(entries);
        SortedMap {
            entries: Stored::Arena(in_arena),
        }
    }

    pub(crate) fn into_entries(self) -> Vec<(Str<'a>, V)> {
        self.entries.into_vec()
    }

    pub(crate) fn map_entries<'b, W>(
        self,
        mut f: impl FnMut(Str<'a>, V) -> (Str<'b>, W),
    ) -> SortedMap<'b, W> {
        let entries = self.into_entries().into_iter().map(|(k, v)| f(k, v));
        SortedMap::from_sorted(entries.collect())
    }
}

/// A set of strings, sorted by bytes and duplicate-free (Scope's `StringSet`/`IDList`).
#[derive(Clone, Debug, Default)]
pub struct StringSet<'a> {
    /// Invariant: strictly increasing.
    items: SetItems<'a>,
}

/// A set's strings: one inline, or a vector, or a slice in a [`DecodeArena`]. Half of a report's sets (most `parents`) hold one
/// string, and a heap block each was a sixth of decoding's allocations.
#[derive(Clone, Debug)]
enum SetItems<'a> {
    One(Str<'a>),
    /// Any other number of strings.
    Many(Vec<Str<'a>>),
    /// Decoded into an arena: more than one string, all borrowed.
    Arena(&'a [Str<'a>]),
}

impl Default for SetItems<'_> {
    fn default() -> Self {
        SetItems::Many(Vec::new())
    }
}

impl<'a> SetItems<'a> {
    fn from_vec(mut items: Vec<Str<'a>>) -> Self {
        if items.len() == 1
            && let Some(only) = items.pop()
        {
            return SetItems::One(only);
        }
        SetItems::Many(items)
    }

    fn as_slice(&self) -> &[Str<'a>] {
        match self {
            SetItems::One(only) => std::slice::from_ref(only),
            SetItems::Many(items) => items,
            SetItems::Arena(items) => items,
        }
    }

    fn into_vec(self) -> Vec<Str<'a>> {
        match self {
            SetItems::One(only) => vec![only],
            SetItems::Many(items) => items,
            SetItems::Arena(items) => items.to_vec(),
        }
    }
}

impl<'a> StringSet<'a> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from strings in any order; sorts and removes duplicates (spec §9.7: Go
    /// keeps unsorted input as sent and then merges it wrongly; we normalise on decode).
    pub fn from_unsorted(mut items: Vec<Str<'a>>) -> Self {
        sort_unique(&mut items);
        StringSet {
            items: SetItems::from_vec(items),
        }
    }

    /// [`StringSet::from_unsorted`] over the strings drained from the decoder's reused
    /// `scratch`: one string is kept inline, more are copied at their exact number, into
    /// `arena` if there is one.
    pub(crate) fn from_unsorted_scratch(
        scratch: &mut Vec<Str<'a>>,
        arena: Option<&'a DecodeArena>,
    ) -> Self {
        sort_unique(scratch);
        // The scratch keeps its block for the next list.
        let items = match (scratch.len(), arena) {
            (1, _) => SetItems::One(scratch.swap_remove(0)),
            (0, _) => SetItems::Many(Vec::new()),
            (_, Some(arena)) => SetItems::Arena(arena.strs(scratch)),
            (len, None) => {
                let mut items = Vec::with_capacity(len);
                items.append(scratch);
                SetItems::Many(items)
            }
        };
        scratch.clear();
        StringSet { items }
    }

    /// Adds one string.
    pub fn insert(&mut self, s: impl Into<Str<'a>>) {
        let s = s.into();
        if let Err(i) = self.items.as_slice().binary_search(&s) {
            let mut items = std::mem::take(&mut self.items).into_vec();
            items.insert(i, s);
            self.items = SetItems::from_vec(items);
        }
    }

    /// Whether `s` is in the set.
    pub fn contains(&self, s: &str) -> bool {
        self.items
            .as_slice()
            .binary_search_by(|x| x.as_ref().cmp(s))
            .is_ok()
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.items.as_slice().len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.items.as_slice().is_empty()
    }

    /// Strings in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.items.as_slice().iter().map(|s| s.as_ref())
    }

    pub(crate) fn into_items(self) -> Vec<Str<'a>> {
        self.items.into_vec()
    }

    pub(crate) fn from_sorted(items: Vec<Str<'a>>) -> Self {
        debug_assert!(items.windows(2).all(|w| w[0] < w[1]));
        StringSet {
            items: SetItems::from_vec(items),
        }
    }
}

impl PartialEq for StringSet<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.items.as_slice() == other.items.as_slice()
    }
}

/// Sorts `items` and removes duplicates, unless they already are (as decoded sets nearly
/// always are: Go writes them sorted).
fn sort_unique(items: &mut Vec<Str<'_>>) {
    if !items.windows(2).all(|w| w[0] < w[1]) {
        items.sort_unstable();
        items.dedup();
    }
}

/// Scope's `Sets`: key → [`StringSet`] (node `sets` and `parents`, spec §4.2).
pub type Sets<'a> = SortedMap<'a, StringSet<'a>>;

/// One latest-map value (spec §4.2).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatestEntry<'a> {
    /// When the value was set; zero when absent on the wire.
    pub timestamp: Time,
    /// The value (always a string).
    pub value: Str<'a>,
}

/// Scope's `StringLatestMap`: key → timestamped string (spec §4.2).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatestMap<'a> {
    pub(crate) map: SortedMap<'a, LatestEntry<'a>>,
}

impl<'a> LatestMap<'a> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry under `key`.
    pub fn get(&self, key: &str) -> Option<&LatestEntry<'a>> {
        self.map.get(key)
    }

    /// Sets `key` to `value` stamped `timestamp`, replacing any entry.
    pub fn insert(&mut self, key: impl Into<Str<'a>>, timestamp: Time, value: impl Into<Str<'a>>) {
        self.map.insert(
            key,
            LatestEntry {
                timestamp,
                value: value.into(),
            },
        );
    }

    /// Removes the entry under `key`.
    pub fn remove(&mut self, key: &str) -> Option<LatestEntry<'a>> {
        self.map.remove(key)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Str<'a>, &LatestEntry<'a>)> + '_ {
        self.map.iter()
    }
}

/// A metric sample's value or bound (spec §4.2): the number text a plugin sent, or a float.
///
/// Sample values only pass through the probe (merges order samples by date and never look at
/// their values), and so do the bounds of most metrics, so a decoded value keeps its JSON
/// text, borrowed from the body, and is written back as it came. Scope's app then parses exactly the plugin's text, just as when
/// Go's probe reads and rewrites the float: Go's parse is correctly rounded and its writer
/// round-trips, so both give the app the same `float64`. Reading and rewriting every sample
/// was a fifth of the decode + merge + encode pipeline.
///
/// Equality is by value: `Number::from(1.5)` equals the text `1.50`.
#[derive(Clone, Copy)]
pub struct Number<'a>(NumberRepr<'a>);

#[derive(Clone, Copy)]
enum NumberRepr<'a> {
    /// A JSON number without exponent (`-?int(.frac)?`) whose value is finite: ASCII, so
    /// always UTF-8. Bytes rather than `&str` because cutting a `&str` out of the body checks
    /// both ends for character boundaries, for every sample.
    Text(&'a [u8]),
    Float(f64),
}

impl<'a> Number<'a> {
    /// Integer digits a text may have and still be a finite `f64` (below `1e308`).
    pub(crate) const MAX_TEXT_INT_DIGITS: usize = 308;

    /// `text` kept as it is if it is a JSON number without exponent (`-?int(.frac)?`) whose
    /// value is a finite `f64`; `None` otherwise (such spellings are read as floats).
    pub fn from_json_text(text: &'a str) -> Option<Number<'a>> {
        // The decoder's own grammar, so the two cannot disagree.
        (super::fast::plain_number_end(text.as_bytes(), 0) == Some(text.len()))
            .then_some(Number(NumberRepr::Text(text.as_bytes())))
    }

    /// Bytes the decoder has already checked as [`Number::from_json_text`] would.
    pub(crate) fn checked_text(text: &'a [u8]) -> Number<'a> {
        debug_assert!(
            super::fast::plain_number_end(text, 0) == Some(text.len()),
            "not a number text: {text:?}"
        );
        Number(NumberRepr::Text(text))
    }

    /// The value: the text parsed with correct rounding (as Go's `strconv.ParseFloat`).
    pub fn to_f64(self) -> f64 {
        match self.0 {
            // Checked text always parses, to a finite value.
            NumberRepr::Text(_) => self
                .json_text()
                .and_then(|text| text.parse().ok())
                .unwrap_or(0.0),
            NumberRepr::Float(v) => v,
        }
    }

    /// The JSON text kept from the body, if the value came as one.
    pub fn json_text(self) -> Option<&'a str> {
        // Checked text is ASCII, so the conversion cannot fail.
        self.json_bytes()
            .and_then(|text| std::str::from_utf8(text).ok())
    }

    /// [`Number::json_text`] as bytes, for the encoder.
    pub(crate) fn json_bytes(self) -> Option<&'a [u8]> {
        match self.0 {
            NumberRepr::Text(text) => Some(text),
            NumberRepr::Float(_) => None,
        }
    }

    /// The same value, owning nothing: kept text becomes its float.
    pub fn into_owned(self) -> Number<'static> {
        Number(NumberRepr::Float(self.to_f64()))
    }
}

impl Default for Number<'_> {
    fn default() -> Self {
        Number(NumberRepr::Float(0.0))
    }
}

impl From<f64> for Number<'_> {
    fn from(v: f64) -> Self {
        Number(NumberRepr::Float(v))
    }
}

impl PartialEq for Number<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self.0, other.0) {
            (NumberRepr::Text(a), NumberRepr::Text(b)) if a == b => true,
            _ => self.to_f64() == other.to_f64(),
        }
    }
}

impl PartialEq<f64> for Number<'_> {
    fn eq(&self, other: &f64) -> bool {
        self.to_f64() == *other
    }
}

impl std::fmt::Debug for Number<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            NumberRepr::Text(_) => f.write_str(self.json_text().unwrap_or_default()),
            NumberRepr::Float(v) => std::fmt::Debug::fmt(&v, f),
        }
    }
}

/// One metric sample (spec §4.2).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample<'a> {
    /// When it was taken.
    pub date: Time,
    /// The value.
    pub value: Number<'a>,
}

/// A metric's samples in strictly increasing date order (not checked; merges rely on it).
///
/// Used as a slice of [`Sample`]s. Decoding also keeps the JSON text of the array when writing
/// the samples again would give exactly that text (every sample spelt as Go writes it, every
/// date in the form [`Time::write_rfc3339`] gives), and encoding copies it whole: most metrics
/// pass through the probe untouched, and writing their samples one by one was a third of
/// encoding. Any change through [`DerefMut`](std::ops::DerefMut) or [`Samples::into_vec`]
/// drops the text, so it never disagrees with the samples. Equality ignores it.
///
/// Decoded samples live in the [`DecodeArena`] the report was decoded into, if any; changing
/// them through [`DerefMut`](std::ops::DerefMut) first copies them out.
#[derive(Clone, Debug, Default)]
pub struct Samples<'a> {
    items: Stored<'a, Sample<'a>>,
    /// Invariant: when `Some`, exactly what encoding `items` as a JSON array writes.
    text: Option<&'a [u8]>,
}

impl<'a> Samples<'a> {
    /// Samples decoded into an arena.
    pub(crate) fn in_arena(items: &'a [Sample<'a>]) -> Samples<'a> {
        Samples {
            items: Stored::Arena(items),
            text: None,
        }
    }

    /// The same samples with the text they were decoded from (a JSON array, from `[` to `]`),
    /// which the decoder has checked to be what encoding them writes.
    pub(crate) fn and_text(self, text: &'a [u8]) -> Samples<'a> {
        debug_assert!(text.first() == Some(&b'[') && text.last() == Some(&b']'));
        Samples {
            text: Some(text),
            ..self
        }
    }

    /// The JSON array these samples were decoded from, when it is exactly what encoding them
    /// writes.
    pub(crate) fn json_text(&self) -> Option<&'a [u8]> {
        self.text
    }

    /// The samples, without their text.
    pub fn into_vec(self) -> Vec<Sample<'a>> {
        self.items.into_vec()
    }

    /// [`Samples::into_vec`] with room for `extra` more samples.
    pub(crate) fn into_vec_reserving(self, extra: usize) -> Vec<Sample<'a>> {
        self.items.into_vec_reserving(extra)
    }
}

impl<'a> From<Vec<Sample<'a>>> for Samples<'a> {
    fn from(items: Vec<Sample<'a>>) -> Self {
        Samples {
            items: Stored::Heap(items),
            text: None,
        }
    }
}

impl<'a> FromIterator<Sample<'a>> for Samples<'a> {
    fn from_iter<I: IntoIterator<Item = Sample<'a>>>(iter: I) -> Self {
        Vec::from_iter(iter).into()
    }
}

impl<'a> std::ops::Deref for Samples<'a> {
    type Target = [Sample<'a>];

    fn deref(&self) -> &[Sample<'a>] {
        self.items.as_slice()
    }
}

impl<'a> std::ops::DerefMut for Samples<'a> {
    fn deref_mut(&mut self) -> &mut [Sample<'a>] {
        self.text = None;
        match self.items.heap() {
            Some(items) => items,
            None => &mut [],
        }
    }
}

impl PartialEq for Samples<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<'s, 'a> IntoIterator for &'s Samples<'a> {
    type Item = &'s Sample<'a>;
    type IntoIter = std::slice::Iter<'s, Sample<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A time series with display bounds (spec §4.2).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metric<'a> {
    /// The samples.
    pub samples: Samples<'a>,
    /// Lower display bound. A number, kept as its text when it came as a plain one (see
    /// [`Number`]): most metrics pass through the probe, and reading and writing their bounds
    /// again cost more than all other metric fields.
    pub min: Number<'a>,
    /// Upper display bound, as `min`.
    pub max: Number<'a>,
}

/// Metric id → metric.
pub type Metrics<'a> = SortedMap<'a, Metric<'a>>;

impl InArena for LatestEntry<'_> {
    fn owns_no_heap(&self) -> bool {
        str_owns_no_heap(&self.value)
    }
}

impl InArena for StringSet<'_> {
    fn owns_no_heap(&self) -> bool {
        match &self.items {
            SetItems::One(only) => str_owns_no_heap(only),
            SetItems::Many(items) => items.capacity() == 0,
            SetItems::Arena(_) => true,
        }
    }
}

impl InArena for Metric<'_> {
    fn owns_no_heap(&self) -> bool {
        self.samples.items.owns_no_heap()
    }
}

/// A node (spec §4).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node<'a> {
    /// Node ID; should equal its key in `nodes`.
    pub id: Str<'a>,
    /// Internal topology name (`host`, `container_image`, …), or empty.
    pub topology: Str<'a>,
    /// String-set attributes.
    pub sets: Sets<'a>,
    /// Outgoing edges.
    pub adjacency: StringSet<'a>,
    /// Scalar metadata.
    pub latest: LatestMap<'a>,
    /// Time series.
    pub metrics: Metrics<'a>,
    /// Internal topology name → parent node IDs.
    pub parents: Sets<'a>,
    /// Child nodes keyed by their `id`.
    pub children: NodeSet<'a>,
}

impl<'a> Node<'a> {
    /// A node with only its ID set (Go's `MakeNode`).
    pub fn new(id: impl Into<Str<'a>>) -> Node<'a> {
        Node {
            id: id.into(),
            ..Node::default()
        }
    }
}

/// Node ID → node: a topology's `nodes`.
///
/// Boxed, so an entry is 32 bytes instead of 224: merging a report's new nodes into an
/// interval's report moves the entries after each of them (or builds the vector anew), and
/// moving 200-byte nodes was about a fifth of the time merging ten 1 MB reports took.
pub type Nodes<'a> = SortedMap<'a, Box<Node<'a>>>;

/// Scope's `NodeSet` (node `children`): nodes keyed by their own `id` (spec §4.2).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeSet<'a> {
    /// Invariant: strictly increasing `id`s.
    pub(crate) nodes: Vec<Node<'a>>,
}

impl<'a> NodeSet<'a> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `node`, replacing one with the same `id`.
    pub fn insert(&mut self, node: Node<'a>) {
        match self.nodes.binary_search_by(|n| n.id.as_ref().cmp(&node.id)) {
            Ok(i) => self.nodes[i] = node,
            Err(i) => self.nodes.insert(i, node),
        }
    }

    /// The node with this `id`.
    pub fn get(&self, id: &str) -> Option<&Node<'a>> {
        self.nodes
            .binary_search_by(|n| n.id.as_ref().cmp(id))
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Nodes in `id` order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Node<'a>> + '_ {
        self.nodes.iter()
    }
}

/// A control definition (spec §5.1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Control<'a> {
    /// Control ID (the plugin host uses the map key instead, §7.6).
    pub id: Str<'a>,
    /// Button label.
    pub human: Str<'a>,
    /// Font Awesome class.
    pub icon: Str<'a>,
    /// Confirmation question.
    pub confirmation: Str<'a>,
    /// Display order.
    pub rank: i64,
    /// Probe that carries it out (`probeId`, master only).
    pub probe_id: Str<'a>,
}

/// Control ID → control.
pub type Controls<'a> = SortedMap<'a, Control<'a>>;

/// How to show one latest/sets/counter value (spec §5.2).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetadataTemplate<'a> {
    /// The key looked up in the node.
    pub id: Str<'a>,
    /// Label.
    pub label: Str<'a>,
    /// Truncation length.
    pub truncate: i64,
    /// `dataType`.
    pub data_type: Str<'a>,
    /// Sort priority; the higher wins merges (§6.1.5).
    pub priority: f64,
    /// `latest`, `sets` or `counters`.
    pub from: Str<'a>,
}

/// How to show one metric (spec §5.3).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricTemplate<'a> {
    /// The key looked up in `node.metrics`.
    pub id: Str<'a>,
    /// Label.
    pub label: Str<'a>,
    /// `""`, `filesize`, `integer` or `percent`.
    pub format: Str<'a>,
    /// Group.
    pub group: Str<'a>,
    /// Sort priority; the higher wins merges (§6.1.5).
    pub priority: f64,
}

/// A table column (spec §5.4).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Column<'a> {
    /// Column ID.
    pub id: Str<'a>,
    /// Label.
    pub label: Str<'a>,
    /// `dataType`.
    pub data_type: Str<'a>,
}

/// How to show a table (spec §5.4).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableTemplate<'a> {
    /// Table ID.
    pub id: Str<'a>,
    /// Label.
    pub label: Str<'a>,
    /// Latest-key prefix of the cells.
    pub prefix: Str<'a>,
    /// `type`: `""`, `property-list` or `multicolumn-table`.
    pub kind: Str<'a>,
    /// Columns, in order.
    pub columns: Vec<Column<'a>>,
    /// `fixedRows`.
    pub fixed_rows: SortedMap<'a, Str<'a>>,
}

/// Key → metadata template.
pub type MetadataTemplates<'a> = SortedMap<'a, MetadataTemplate<'a>>;
/// Key → metric template.
pub type MetricTemplates<'a> = SortedMap<'a, MetricTemplate<'a>>;
/// Key → table template.
pub type TableTemplates<'a> = SortedMap<'a, TableTemplate<'a>>;

/// One topology (spec §3).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Topology<'a> {
    /// Node shape.
    pub shape: Str<'a>,
    /// Secondary icon.
    pub tag: Str<'a>,
    /// Singular label.
    pub label: Str<'a>,
    /// Plural label (`label_plural`).
    pub label_plural: Str<'a>,
    /// Node ID → node.
    pub nodes: Nodes<'a>,
    /// Control definitions.
    pub controls: Controls<'a>,
    /// `metadata_templates`.
    pub metadata_templates: MetadataTemplates<'a>,
    /// `metric_templates`.
    pub metric_templates: MetricTemplates<'a>,
    /// `table_templates`.
    pub table_templates: TableTemplates<'a>,
}

/// DNS names of one address (spec §5.6).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DnsRecord<'a> {
    /// Forward names.
    pub forward: StringSet<'a>,
    /// Reverse names.
    pub reverse: StringSet<'a>,
}

/// IP → DNS record.
pub type DnsRecords<'a> = SortedMap<'a, DnsRecord<'a>>;

/// Packet-sampling counters (spec §5.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sampling {
    /// `Count`.
    pub count: u64,
    /// `Total`.
    pub total: u64,
}

/// A plugin's description (spec §5.5).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PluginSpec<'a> {
    /// Plugin ID.
    pub id: Str<'a>,
    /// Label; must be non-empty.
    pub label: Str<'a>,
    /// Description (never checked).
    pub description: Str<'a>,
    /// Must equal the probe's, `"1"`.
    pub api_version: Str<'a>,
    /// Set by the host: `ok` or `error: …`.
    pub status: Str<'a>,
    /// `reporter`, `controller`, … in the order sent.
    pub interfaces: Vec<Str<'a>>,
}

/// Plugin specs keyed by `id` (spec §5.5): duplicates collapse, the last one wins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PluginSpecs<'a> {
    /// Invariant: strictly increasing `id`s.
    pub(crate) specs: Vec<PluginSpec<'a>>,
}

impl<'a> PluginSpecs<'a> {
    /// No specs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of distinct ids.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Specs in `id` order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &PluginSpec<'a>> + '_ {
        self.specs.iter()
    }

    /// Specs in `id` order, mutable (changing an `id` through this breaks the order; use
    /// [`PluginSpecs::insert`] for that).
    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = &mut PluginSpec<'a>> + '_ {
        self.specs.iter_mut()
    }

    /// The spec with this id.
    pub fn get(&self, id: &str) -> Option<&PluginSpec<'a>> {
        self.specs
            .binary_search_by(|s| s.id.as_ref().cmp(id))
            .ok()
            .map(|i| &self.specs[i])
    }

    /// Adds `spec`, replacing the one with the same id (returned).
    pub fn insert(&mut self, spec: PluginSpec<'a>) -> Option<PluginSpec<'a>> {
        match self.specs.binary_search_by(|s| s.id.as_ref().cmp(&spec.id)) {
            Ok(i) => Some(std::mem::replace(&mut self.specs[i], spec)),
            Err(i) => {
                self.specs.insert(i, spec);
                None
            }
        }
    }

    /// Same as [`PluginSpecs::insert`].
    pub fn replace(&mut self, spec: PluginSpec<'a>) -> Option<PluginSpec<'a>> {
        self.insert(spec)
    }

    /// Keeps only the specs for which `keep` is true (order and uniqueness are kept).
    pub fn retain(&mut self, keep: impl FnMut(&PluginSpec<'a>) -> bool) {
        self.specs.retain(keep);
    }

    /// Removes every spec.
    pub fn clear(&mut self) {
        self.specs.clear();
    }

    /// The first spec in id order (the one whose id the plugin host uses, §7.6).
    pub fn first(&self) -> Option<&PluginSpec<'a>> {
        self.specs.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    // Spec §4.2: a sample value is a JSON number; plain spellings are kept as text.
    #[test]
    fn number_keeps_plain_json_text_only() {
        for plain in [
            "0",
            "-0",
            "7",
            "-12.50",
            "0.000001",
            "90.90740686605085",
            "1.0",
        ] {
            let n = Number::from_json_text(plain).expect(plain);
            assert_eq!(n.json_text(), Some(plain));
            assert_eq!(n.to_f64(), plain.parse::<f64>().unwrap(), "{plain}");
        }
        let huge = "9".repeat(Number::MAX_TEXT_INT_DIGITS);
        assert!(Number::from_json_text(&huge).is_some_and(|n| n.to_f64().is_finite()));
        let too_huge = "9".repeat(Number::MAX_TEXT_INT_DIGITS + 1);
        for other in [
            "", "-", "+1", "01", "-01", "1.", ".5", "1e3", "1E-3", "1.5e2", "0x10", "1 ", " 1",
            "1.2.3", "NaN", "\"1\"", "null", &too_huge,
        ] {
            assert!(Number::from_json_text(other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn number_compares_and_owns_by_value() {
        let text = Number::from_json_text("1.50").unwrap();
        assert_eq!(text, Number::from(1.5));
        assert_eq!(text, 1.5);
        assert_ne!(text, Number::from(1.25));
        assert_eq!(Number::default(), 0.0);
        let owned: Number<'static> = text.into_owned();
        assert_eq!((owned.json_text(), owned.to_f64()), (None, 1.5));
        assert_eq!(format!("{text:?} {:?}", Number::from(2.0)), "1.50 2.0");
        // Niche-packed: a sample is no bigger than its date and a pointer and length.
        assert_eq!(std::mem::size_of::<Number<'_>>(), 16);
    }

    #[test]
    fn sorted_map_keeps_order_and_replaces() {
        let mut m: SortedMap<'_, i32> = SortedMap::new();
        m.insert("b", 1);
        m.insert("a", 2);
        assert_eq!(m.insert("b", 3), Some(1));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m.get("b"), Some(&3));
        *m.slot(Cow::Borrowed("c")).unwrap() = 4;
        *m.slot(Cow::Borrowed("a")).unwrap() += 10;
        *m.slot(Cow::Borrowed("aa")).unwrap() = 5;
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "aa", "b", "c"]);
        assert_eq!(m.get("a"), Some(&12));
        assert_eq!(m.remove("aa"), Some(5));
        assert!(!m.contains_key("aa"));
    }

    // A map decoded into an arena reads the same as one on the heap, and every change works
    // on a copy of its own.
    #[test]
    fn sorted_map_in_arena_reads_in_place_and_copies_out_to_change() {
        let entry = |v: &'static str| LatestEntry {
            timestamp: Time::from_unix_nanos(1),
            value: Cow::Borrowed(v),
        };
        let arena = DecodeArena::new();
        let mut scratch: SortedMap<'_, LatestEntry<'_>> = SortedMap::new();
        for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
            *scratch.slot(Cow::Borrowed(k)).unwrap() = entry(v);
        }
        let on_heap = scratch.clone().drain_exact(None);
        let in_arena = scratch.drain_exact(Some(&arena));
        assert!(scratch.is_empty(), "the scratch map is drained");
        assert!(matches!(in_arena.entries, Stored::Arena(_)));
        assert!(matches!(on_heap.entries, Stored::Heap(_)));
        assert_eq!(in_arena, on_heap);
        assert_eq!(format!("{in_arena:?}"), format!("{on_heap:?}"));
        assert_eq!(in_arena.get("b"), Some(&entry("2")));
        assert!(in_arena.contains_key("c") && !in_arena.contains_key("d"));
        assert_eq!(in_arena.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(
            in_arena.clone().into_entries(),
            on_heap.clone().into_entries()
        );

        let changes: [fn(&mut SortedMap<'_, LatestEntry<'_>>); 6] = [
            |m| *m.get_mut("a").unwrap() = LatestEntry::default(),
            |m| assert!(m.insert("d", LatestEntry::default()).is_none()),
            |m| assert!(m.remove("b").is_some()),
            |m| {
                m.iter_mut()
                    .for_each(|(_, e)| e.value = Cow::Owned("x".into()))
            },
            |m| *m.slot(Cow::Borrowed("0")).unwrap() = LatestEntry::default(),
            |m| m.clear(),
        ];
        for change in changes {
            let (mut a, mut h) = (in_arena.clone(), on_heap.clone());
            change(&mut a);
            change(&mut h);
            assert!(
                matches!(a.entries, Stored::Heap(_)),
                "changed in place in the arena"
            );
            assert_eq!(a, h);
        }
        assert_eq!(in_arena, on_heap, "copies changed, not the arena's entries");
    }

    // spec §9.7: sets are sorted and de-duplicated.
    #[test]
    fn string_set_normalises() {
        let s = StringSet::from_unsorted(vec!["b".into(), "a".into(), "a".into(), "B".into()]);
        assert_eq!(s.iter().collect::<Vec<_>>(), ["B", "a", "b"]);
        let mut s = s;
        s.insert("c");
        s.insert("a");
        assert_eq!(s.len(), 4);
        assert!(s.contains("c"));
    }

    // A one-string set is kept inline; however a set is built (decoder scratch on the heap or
    // into an arena, unsorted list, inserts, merge output), the same strings make the same set.
    #[test]
    fn string_sets_of_any_size_compare_by_their_strings() {
        let strs = |v: &[&'static str]| v.iter().map(|&s| Str::from(s)).collect::<Vec<_>>();
        let arena = DecodeArena::new();
        for list in [&[][..], &["a"], &["b", "a"], &["c", "a", "b", "a"]] {
            let mut scratch = strs(list);
            let from_scratch = StringSet::from_unsorted_scratch(&mut scratch, None);
            assert!(scratch.is_empty());
            let mut scratch = strs(list);
            // An owned string too: the arena keeps a borrowed copy of it.
            scratch.extend(list.first().map(|s| Str::Owned(s.to_string())));
            let mut in_arena = StringSet::from_unsorted_scratch(&mut scratch, Some(&arena));
            assert!(scratch.is_empty());
            match &in_arena.items {
                SetItems::Arena(items) => {
                    assert!(items.len() > 1);
                    assert!(items.iter().all(|s| matches!(s, Cow::Borrowed(_))));
                }
                _ => assert!(in_arena.len() < 2, "{list:?} not in the arena"),
            }
            let mut inserted = StringSet::new();
            for s in list {
                inserted.insert(*s);
            }
            let unsorted = StringSet::from_unsorted(strs(list));
            let mut sorted = strs(list);
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(from_scratch, unsorted, "{list:?}");
            assert_eq!(inserted, unsorted, "{list:?}");
            assert_eq!(StringSet::from_sorted(sorted.clone()), unsorted, "{list:?}");
            assert_eq!(unsorted.len(), sorted.len());
            assert_eq!(unsorted.is_empty(), sorted.is_empty());
            assert!(unsorted.iter().eq(sorted.iter().map(|s| s.as_ref())));
            assert_eq!(unsorted.clone().into_items(), sorted);
            assert!(list.iter().all(|s| unsorted.contains(s)));
            assert!(!unsorted.contains("z"));
            assert_eq!(in_arena, unsorted, "{list:?}");
            // Changing an arena set moves it to the heap.
            in_arena.insert("z");
            assert!(!matches!(in_arena.items, SetItems::Arena(_)));
            assert!(in_arena.contains("z") && in_arena.len() == unsorted.len() + 1);
        }
        let one = StringSet::from_unsorted(strs(&["a"]));
        assert!(matches!(one.items, SetItems::One(_)));
        assert_ne!(one, StringSet::from_unsorted(strs(&["a", "b"])));
        assert_ne!(one, StringSet::new());
    }

    // spec §5.5: duplicates collapse, the last one wins.
    #[test]
    fn plugin_specs_last_wins() {
        let mut p = PluginSpecs::new();
        p.insert(PluginSpec {
            id: "b".into(),
            label: "1".into(),
            ..PluginSpec::default()
        });
        p.insert(PluginSpec {
            id: "a".into(),
            ..PluginSpec::default()
        });
        p.insert(PluginSpec {
            id: "b".into(),
            label: "2".into(),
            ..PluginSpec::default()
        });
        assert_eq!(p.len(), 2);
        assert_eq!(p.get("b").map(|s| s.label.as_ref()), Some("2"));
        assert_eq!(p.first().map(|s| s.id.as_ref()), Some("a"));
    }
}
