//! The core's one sort (issue 15): every `sort_by` call site was its own 1-3 KB copy of
//! std's stable sort (drift + quicksort + small-sort networks); this heapsort is one small
//! non-generic function, whatever is being sorted.

use std::cmp::Ordering;

/// The indices `0..n` ordered by `cmp`, equal elements by index: exactly the permutation a
/// stable sort makes. Heapsort: O(n log n) compares, no extra memory beyond the result.
pub(crate) fn sorted_indices(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let less = |a: usize, b: usize| cmp(a, b).then(a.cmp(&b)) == Ordering::Less;
    let sift = |v: &mut [usize], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(v[child], v[child + 1]) {
            child += 1;
        }
        if !less(v[root], v[child]) {
            break;
        }
        v.swap(root, child);
        root = child;
    };
    let mut v: Vec<usize> = (0..n).collect();
    for root in (0..n / 2).rev() {
        sift(&mut v, root, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(&mut v, 0, end);
    }
    v
}

/// `items` stably sorted by `cmp` (see [`sorted_indices`]).
pub(crate) fn sorted<T>(items: Vec<T>, cmp: &dyn Fn(&T, &T) -> Ordering) -> Vec<T> {
    let order = sorted_indices(items.len(), &|a, b| cmp(&items[a], &items[b]));
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    // `order` is a permutation, so every slot is taken once.
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::test_rng::Rng;

    #[test]
    fn sorts_like_the_std_stable_sort() {
        let mut rng = Rng(0x5047_7e57);
        for n in (0..40).chain([100, 257, 1000]) {
            for spread in [1, 3, 10, 1 << 20] {
                let items: Vec<(u64, usize)> = (0..n).map(|i| (rng.below(spread), i)).collect();
                let mut want = items.clone();
                want.sort_by_key(|p| p.0);
                let got = sorted(items.clone(), &|a, b| a.0.cmp(&b.0));
                assert_eq!(got, want, "n {n} spread {spread}");
                let idx = sorted_indices(n, &|a, b| items[a].0.cmp(&items[b].0));
                let want_idx: Vec<usize> = want.iter().map(|p| p.1).collect();
                assert_eq!(idx, want_idx);
            }
        }
    }
}
