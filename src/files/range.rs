//! HTTP Range (RFC 9110 §14): parsing `bytes=` specs into absolute ranges of a known length.
//! Malformed headers are ignored (full response); syntactically valid but unsatisfiable is 416.

/// An inclusive byte range `start..=end` within the representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What a Range header asks for, given the representation's length.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No header, or one we ignore because it is malformed: send everything (200).
    Full,
    /// One or more satisfiable ranges (206).
    Partial(Vec<ByteRange>),
    /// Valid syntax but no range overlaps the representation (416).
    Unsatisfiable,
}

/// At most this many ranges per request, so a header cannot make us do unbounded work.
const MAX_RANGES: usize = 16;

pub fn parse(header: Option<&str>, length: u64) -> RangeRequest {
    let Some(header) = header else {
        return RangeRequest::Full;
    };
    let Some(specs) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    let mut ranges = Vec::new();
    let mut parts = 0;
    for spec in specs.split(',') {
        parts += 1;
        if parts > MAX_RANGES {
            return RangeRequest::Full;
        }
        let spec = spec.trim();
        let Some((first, last)) = spec.split_once('-') else {
            return RangeRequest::Full;
        };
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            // Suffix range: the last N bytes.
            let Ok(n) = last.parse::<u64>() else {
                return RangeRequest::Full;
            };
            if n == 0 || length == 0 {
                None
            } else {
                Some(ByteRange {
                    start: length.saturating_sub(n),
                    end: length - 1,
                })
            }
        } else {
            let Ok(start) = first.parse::<u64>() else {
                return RangeRequest::Full;
            };
            let end = if last.is_empty() {
                None
            } else {
                match last.parse::<u64>() {
                    Ok(e) if e >= start => Some(e),
                    _ => return RangeRequest::Full,
                }
            };
            if start >= length {
                None
            } else {
                Some(ByteRange {
                    start,
                    end: end.map_or(length - 1, |e| e.min(length - 1)),
                })
            }
        };
        ranges.extend(range);
    }
    if ranges.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Partial(coalesce(ranges))
    }
}

/// Merges ranges that overlap or touch (RFC 9110 §14.3 allows it), so a header repeating
/// the same bytes cannot make us send them many times. Disjoint ranges keep the client's
/// order; once any merge happens the result is in ascending order.
fn coalesce(ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    let mut sorted = ranges.clone();
    sorted.sort_by_key(|r| r.start);
    let mut merged: Vec<ByteRange> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match merged.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(1) => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    if merged.len() == ranges.len() {
        ranges
    } else {
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn table_of_cases() {
        let cases: &[(Option<&str>, u64, RangeRequest)] = &[
            (None, 100, RangeRequest::Full),
            (Some("bytes=0-9"), 100, RangeRequest::Partial(vec![r(0, 9)])),
            (
                Some("bytes=90-"),
                100,
                RangeRequest::Partial(vec![r(90, 99)]),
            ),
            (
                Some("bytes=-10"),
                100,
                RangeRequest::Partial(vec![r(90, 99)]),
            ),
            (
                Some("bytes=-500"),
                100,
                RangeRequest::Partial(vec![r(0, 99)]),
            ),
            (
                Some("bytes=95-200"),
                100,
                RangeRequest::Partial(vec![r(95, 99)]),
            ),
            (
                Some("bytes=0-0, 5-9"),
                100,
                RangeRequest::Partial(vec![r(0, 0), r(5, 9)]),
            ),
            (Some("bytes=100-"), 100, RangeRequest::Unsatisfiable),
            (Some("bytes=200-300"), 100, RangeRequest::Unsatisfiable),
            (Some("bytes=-0"), 100, RangeRequest::Unsatisfiable),
            (Some("bytes=0-"), 0, RangeRequest::Unsatisfiable),
            (Some("bytes=5-1"), 100, RangeRequest::Full),
            (Some("bytes=abc"), 100, RangeRequest::Full),
            (Some("items=0-1"), 100, RangeRequest::Full),
            (Some("bytes=1-2-3"), 100, RangeRequest::Full),
            (Some("bytes="), 100, RangeRequest::Full),
        ];
        for (header, len, expected) in cases {
            assert_eq!(&parse(*header, *len), expected, "{header:?} of {len}");
        }
    }

    #[test]
    fn overlapping_and_touching_ranges_are_merged_disjoint_ones_keep_their_order() {
        let header = format!("bytes={}", vec!["0-"; 16].join(","));
        assert_eq!(
            parse(Some(&header), 10),
            RangeRequest::Partial(vec![r(0, 9)])
        );
        assert_eq!(
            parse(Some("bytes=5-9,0-4,20-29"), 100),
            RangeRequest::Partial(vec![r(0, 9), r(20, 29)])
        );
        assert_eq!(
            parse(Some("bytes=50-59,0-1,3-4"), 100),
            RangeRequest::Partial(vec![r(50, 59), r(0, 1), r(3, 4)])
        );
        assert_eq!(
            parse(Some("bytes=-10,95-"), 100),
            RangeRequest::Partial(vec![r(90, 99)])
        );
    }

    #[test]
    fn too_many_ranges_are_ignored() {
        let header = format!("bytes={}", vec!["0-0"; 17].join(","));
        assert_eq!(parse(Some(&header), 10), RangeRequest::Full);
    }
}
