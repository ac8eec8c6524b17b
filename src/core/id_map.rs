//! A small id-keyed map (issue 15): each `HashMap<u64, V>` was its own copy of hashbrown's
//! insert/remove/rehash code, kilobytes of each .wasm; this is a binary search over a Vec.

/// Id → value: a Vec sorted by id. For the driver's (and the shell's) calls, flights,
/// sends and timers, and a consumer's offsets in flight: ids come in increasing order, so
/// an insert appends; few are live at once, so a removal's shift is short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdMap<V>(pub(crate) Vec<(u64, V)>);

impl<V> IdMap<V> {
    pub(crate) fn new() -> IdMap<V> {
        IdMap(Vec::new())
    }

    fn at(&self, id: u64) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |(k, _)| *k)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn get(&self, id: &u64) -> Option<&V> {
        self.at(*id).ok().map(|i| &self.0[i].1)
    }

    pub(crate) fn get_mut(&mut self, id: &u64) -> Option<&mut V> {
        let i = self.at(*id).ok()?;
        Some(&mut self.0[i].1)
    }

    pub(crate) fn insert(&mut self, id: u64, value: V) {
        match self.at(id) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (id, value)),
        }
    }

    pub(crate) fn remove(&mut self, id: &u64) -> Option<V> {
        let i = self.at(*id).ok()?;
        Some(self.0.remove(i).1)
    }

    /// The entries with ids from `id` up, in id order.
    pub(crate) fn starting_at(&self, id: u64) -> &[(u64, V)] {
        &self.0[self.0.partition_point(|(k, _)| *k < id)..]
    }

    /// Removes the entries with ids below `id`.
    pub(crate) fn remove_below(&mut self, id: u64) {
        let below = self.0.partition_point(|(k, _)| *k < id);
        self.0.drain(..below);
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.0.retain(|(_, v)| keep(v));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::core::test_rng::Rng;

    /// The sorted-Vec id map against a BTreeMap: ids in increasing order (the driver's own) and
    /// in any order (call ids come from the shell), with removals of present and absent ids.
    #[test]
    fn id_map_is_a_map_whatever_the_id_order() {
        let mut rng = Rng(0x1d_0a7e);
        let mut next = |n: u64| rng.below(n);
        for increasing in [true, false] {
            let (mut ours, mut model) = (IdMap::new(), BTreeMap::new());
            let mut last = 0;
            for step in 0..3000u64 {
                let id = if increasing {
                    last += 1 + next(3);
                    last
                } else {
                    next(200)
                };
                match next(4) {
                    0 | 1 => {
                        ours.insert(id, step);
                        model.insert(id, step);
                    }
                    2 => {
                        let probe = next(last.max(200) + 1);
                        assert_eq!(ours.remove(&probe), model.remove(&probe));
                    }
                    _ => {
                        if let Some(v) = ours.get_mut(&id) {
                            *v += 1;
                        }
                        if let Some(v) = model.get_mut(&id) {
                            *v += 1;
                        }
                    }
                }
                assert_eq!(ours.len(), model.len());
                let probe = next(last.max(200) + 1);
                assert_eq!(ours.get(&probe), model.get(&probe));
                let from: Vec<(u64, u64)> = model.range(probe..).map(|(&k, &v)| (k, v)).collect();
                assert_eq!(ours.starting_at(probe), from.as_slice());
                if next(50) == 0 {
                    ours.remove_below(probe);
                    model = model.split_off(&probe);
                }
            }
            let all: Vec<(u64, u64)> = model.into_iter().collect();
            assert_eq!(ours.0, all);
        }
    }
}
