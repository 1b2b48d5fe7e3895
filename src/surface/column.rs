//! One column's surface, and the one rule that keeps it exact when voxels of
//! the column change.

use super::MaterialClass;
use crate::material::MaterialId;

/// A column's surface, as the index keeps it: heights in world coordinates,
/// `bottom - 1` standing for "none" (the column's floor is `bottom`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    /// The topmost terrain voxel, or `bottom - 1` when the column holds none.
    pub top: i32,
    /// The top of the liquid resting on `top` (the voxels `top + 1 ..= liquid`
    /// are all liquid, the one above is not, or is above the world): `top`
    /// when no liquid rests on it.
    pub liquid: i32,
    /// The material at `top` (air when there is no terrain).
    pub material: MaterialId,
}

/// The heights of a column: `bottom ..= ceiling`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub bottom: i32,
    pub ceiling: i32,
}

impl Column {
    /// The column read voxel by voxel, from the top down: what every other way
    /// of finding a column's surface must agree with.
    #[cfg_attr(not(any(debug_assertions, feature = "geology")), allow(dead_code))]
    pub fn scan(span: Span, mut read: impl FnMut(i32) -> (MaterialClass, MaterialId)) -> Column {
        let mut top = span.ceiling;
        let mut material = MaterialId::AIR;
        while top >= span.bottom {
            let (class, m) = read(top);
            if class == MaterialClass::Terrain {
                material = m;
                break;
            }
            top -= 1;
        }
        let liquid = liquid_above(top, span, &mut read);
        Column { top, liquid, material }
    }

    /// The column after the voxels at heights `changed` (sorted ascending, no
    /// duplicates) changed, given the column before (`self`) and `read`, which
    /// reads the column as it is now.
    ///
    /// Exact from the column before plus the changes: before, every voxel
    /// above `top` was not terrain, and `top + 1 ..= liquid` was liquid with
    /// `liquid + 1` not; after, only the `changed` voxels can differ. So it
    /// reads the changed voxels, walks down only when the top voxel stopped
    /// being terrain, and walks up only past what the old liquid run and the
    /// changes do not settle.
    pub fn after(
        self,
        changed: &[i32],
        span: Span,
        mut read: impl FnMut(i32) -> (MaterialClass, MaterialId),
    ) -> Column {
        debug_assert!(changed.windows(2).all(|w| w[0] < w[1]), "changed heights sorted and unique");
        let old = self;
        // The new top: the highest changed voxel above the old top that is now
        // terrain; else the old top, if it still is; else the first terrain
        // voxel below it.
        let mut top = None;
        for &y in changed.iter().rev().take_while(|&&y| y > old.top) {
            let (class, m) = read(y);
            if class == MaterialClass::Terrain {
                top = Some((y, m));
                break;
            }
        }
        let (top, material) = top.unwrap_or_else(|| {
            let mut y = old.top;
            while y >= span.bottom {
                let (class, m) = read(y);
                if class == MaterialClass::Terrain {
                    return (y, m);
                }
                y -= 1;
            }
            (span.bottom - 1, MaterialId::AIR)
        });
        let liquid = old.liquid_after(top, changed, span, &mut read);
        Column { top, liquid, material }
    }

    /// The top of the liquid resting on the new top `top`, from the old column's
    /// run and the changes.
    fn liquid_after(
        self,
        top: i32,
        changed: &[i32],
        span: Span,
        read: &mut impl FnMut(i32) -> (MaterialClass, MaterialId),
    ) -> i32 {
        let mut y = top + 1;
        // Up to the old top the old column says nothing of liquid: read.
        while y <= self.top.min(span.ceiling) {
            if read(y).0 != MaterialClass::Liquid {
                return y - 1;
            }
            y += 1;
        }
        if y > span.ceiling {
            return span.ceiling;
        }
        // Inside the old run (old top, old liquid]: liquid unless changed.
        if y <= self.liquid {
            let from = changed.partition_point(|&c| c < y);
            for &c in changed[from..].iter().take_while(|&&c| c <= self.liquid) {
                if read(c).0 != MaterialClass::Liquid {
                    return c - 1;
                }
            }
            y = self.liquid + 1;
            if y > span.ceiling {
                return span.ceiling;
            }
        }
        // Right above the old run: not liquid, unless changed.
        if y == self.liquid + 1 && changed.binary_search(&y).is_err() {
            return y - 1;
        }
        liquid_above(y - 1, span, read)
    }
}

/// The top of the run of liquid voxels starting right above `from`.
fn liquid_above(from: i32, span: Span, read: &mut impl FnMut(i32) -> (MaterialClass, MaterialId)) -> i32 {
    let mut y = from + 1;
    while y <= span.ceiling && read(y).0 == MaterialClass::Liquid {
        y += 1;
    }
    y - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SPAN: Span = Span { bottom: -3, ceiling: 20 };

    fn class(m: u16) -> MaterialClass {
        match m {
            0 => MaterialClass::Gas,
            1 => MaterialClass::Liquid,
            _ => MaterialClass::Terrain,
        }
    }

    fn reader(column: &[u16]) -> impl FnMut(i32) -> (MaterialClass, MaterialId) + '_ {
        move |y| {
            let m = column[(y - SPAN.bottom) as usize];
            (class(m), MaterialId(m))
        }
    }

    fn voxels() -> impl Strategy<Value = Vec<u16>> {
        prop::collection::vec(prop_oneof![3 => Just(0u16), 3 => Just(1u16), 2 => 2u16..5], 24)
    }

    proptest! {
        /// After any changes, the rule gives what a scan of the column gives.
        #[test]
        fn the_rule_matches_a_scan(before in voxels(), edits in prop::collection::vec((0usize..24, 0u16..5), 0..8)) {
            let old = Column::scan(SPAN, reader(&before));
            let mut after = before.clone();
            let mut changed: Vec<i32> = Vec::new();
            for (i, m) in edits {
                after[i] = m;
                changed.push(i as i32 + SPAN.bottom);
            }
            changed.sort_unstable();
            changed.dedup();
            let want = Column::scan(SPAN, reader(&after));
            prop_assert_eq!(old.after(&changed, SPAN, reader(&after)), want);
        }
    }

    #[test]
    fn an_empty_column_has_no_top_and_liquid_from_the_floor() {
        let mut column = vec![0u16; 24];
        column[0] = 1;
        column[1] = 1;
        let c = Column::scan(SPAN, reader(&column));
        assert_eq!((c.top, c.liquid, c.material), (SPAN.bottom - 1, SPAN.bottom + 1, MaterialId::AIR));
    }
}
