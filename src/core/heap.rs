//! The wasm build's memory allocator: power-of-two size classes over pages from a page
//! source (`memory.grow` in the shell, a buffer in the tests).
//!
//! Why not the standard library's dlmalloc: it is about 7 KB of code in each .wasm and every
//! user downloads it; this is well under 1 KB, and O(1) per call.
//!
//! - Every block is a power of two of at least 16 bytes, and freed blocks wait on their
//!   class's free list for the next request of that class. Blocks are never split or merged:
//!   a wasm memory never shrinks anyway, and the client's allocations repeat (frames, rows,
//!   cells), so a freed block is soon reused.
//! - A block under a page comes from a bump region and starts at a multiple of its size;
//!   the bytes skipped to get there, and the tail of a region too short for the next block,
//!   go onto the free lists as smaller blocks, so nothing is lost. A block of a page or more
//!   is whole fresh pages. So every block is aligned to its size (up to a page), which meets
//!   any alignment a layout can ask for below that, and a class-`c` block suits any request
//!   of class `c`.

/// The unit of the page source: a wasm page.
pub const PAGE: usize = 65536;
const MIN_SHIFT: u32 = 4;
const CLASSES: usize = usize::BITS as usize;

/// A source of fresh pages: `grow(n)` hands out `n` contiguous, page-aligned pages that no one
/// else uses, and returns the address of the first, or `None` when memory is exhausted.
pub trait PageSource {
    fn grow(&mut self, pages: usize) -> Option<usize>;
}

pub struct Heap<S> {
    /// The head of each class's free list (0: empty); a free block holds the next address.
    free: [usize; CLASSES],
    bump: usize,
    end: usize,
    source: S,
}

/// The class of a request: log2 of its block size, or `None` when no block can be that big.
fn class_of(size: usize, align: usize) -> Option<usize> {
    let need = size.max(align).max(1 << MIN_SHIFT);
    need.checked_next_power_of_two()
        .map(|block| block.trailing_zeros() as usize)
}

impl<S: PageSource> Heap<S> {
    pub const fn new(source: S) -> Self {
        Heap {
            free: [0; CLASSES],
            bump: 0,
            end: 0,
            source,
        }
    }

    /// A block for `size` bytes aligned to `align` (a power of two), or null.
    ///
    /// # Safety
    /// The heap's free blocks must be untouched by anyone else (what `dealloc`'s contract
    /// ensures).
    pub unsafe fn alloc(&mut self, size: usize, align: usize) -> *mut u8 {
        let Some(class) = class_of(size, align) else {
            return std::ptr::null_mut();
        };
        let head = self.free[class];
        if head != 0 {
            self.free[class] = (head as *const usize).read();
            return head as *mut u8;
        }
        let block = 1usize << class;
        if block >= PAGE {
            return self
                .source
                .grow(block / PAGE)
                .map_or(std::ptr::null_mut(), |address| address as *mut u8);
        }
        let mut start = self.bump.next_multiple_of(block);
        if self.end == 0 || start + block > self.end {
            self.retire(self.bump, self.end);
            let Some(page) = self.source.grow(1) else {
                return std::ptr::null_mut();
            };
            (self.bump, self.end, start) = (page, page + PAGE, page);
        }
        self.retire(self.bump, start);
        self.bump = start + block;
        start as *mut u8
    }

    /// Gives back a block of `alloc(size, align)`.
    ///
    /// # Safety
    /// `ptr` came from this heap's `alloc` (or `realloc`) with the same `size` and `align`, and
    /// is not used after this.
    pub unsafe fn dealloc(&mut self, ptr: *mut u8, size: usize, align: usize) {
        if let Some(class) = class_of(size, align) {
            self.push(class, ptr as usize);
        }
    }

    /// Resizes a block: in place while the class stays the same, else moves it.
    ///
    /// # Safety
    /// As for `dealloc`, with `size` and `align` the block's current ones.
    pub unsafe fn realloc(
        &mut self,
        ptr: *mut u8,
        size: usize,
        align: usize,
        new_size: usize,
    ) -> *mut u8 {
        if class_of(size, align) == class_of(new_size, align) {
            return ptr;
        }
        let moved = self.alloc(new_size, align);
        if !moved.is_null() {
            std::ptr::copy_nonoverlapping(ptr, moved, size.min(new_size));
            self.dealloc(ptr, size, align);
        }
        moved
    }

    unsafe fn push(&mut self, class: usize, address: usize) {
        (address as *mut usize).write(self.free[class]);
        self.free[class] = address;
    }

    /// Puts `from..to` (multiples of 16 inside one region) onto the free lists, as the
    /// largest aligned blocks that fit: each step's block is the lowest set bit of `from`, so
    /// it is aligned to its size and the steps only grow until `to`'s alignment stops them.
    unsafe fn retire(&mut self, mut from: usize, to: usize) {
        while from < to {
            let mut block = 1usize << from.trailing_zeros();
            while from + block > to {
                block >>= 1;
            }
            self.push(block.trailing_zeros() as usize, from);
            from += block;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::test_rng::Rng;

    /// Pages out of one page-aligned buffer, up to a limit.
    struct Buffer {
        _memory: Vec<u8>,
        next: usize,
        limit: usize,
        grown: usize,
    }

    impl Buffer {
        fn new(pages: usize) -> Buffer {
            let memory = vec![0u8; (pages + 1) * PAGE];
            let next = (memory.as_ptr() as usize).next_multiple_of(PAGE);
            Buffer {
                _memory: memory,
                next,
                limit: next + pages * PAGE,
                grown: 0,
            }
        }
    }

    impl PageSource for Buffer {
        fn grow(&mut self, pages: usize) -> Option<usize> {
            let end = self.next.checked_add(pages.checked_mul(PAGE)?)?;
            (end <= self.limit).then(|| {
                self.grown += pages;
                std::mem::replace(&mut self.next, end)
            })
        }
    }

    struct Live {
        ptr: usize,
        size: usize,
        align: usize,
        fill: u8,
    }

    fn check(block: &Live) {
        let bytes = unsafe { std::slice::from_raw_parts(block.ptr as *const u8, block.size) };
        assert!(
            bytes.iter().all(|&b| b == block.fill),
            "a block was overwritten"
        );
    }

    fn fill(block: &Live) {
        unsafe { std::ptr::write_bytes(block.ptr as *mut u8, block.fill, block.size) };
    }

    #[test]
    fn random_traffic_keeps_blocks_apart_aligned_and_intact() {
        let mut heap = Heap::new(Buffer::new(1024));
        let mut live: Vec<Live> = Vec::new();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for step in 0..40_000u32 {
            let r = rng.next();
            match r % 10 {
                0..=4 => {
                    // Mostly small, sometimes a page or more.
                    let size = match r % 97 {
                        0 => 1 + (r >> 20) as usize % (3 * PAGE),
                        1..=9 => 1 + (r >> 20) as usize % 9000,
                        _ => 1 + (r >> 20) as usize % 300,
                    };
                    let align = 1 << ((r >> 8) % 7);
                    let ptr = unsafe { heap.alloc(size, align) } as usize;
                    assert_ne!(ptr, 0, "out of memory at step {step}");
                    assert_eq!(ptr % align, 0, "misaligned");
                    let block = Live {
                        ptr,
                        size,
                        align,
                        fill: step as u8,
                    };
                    fill(&block);
                    live.push(block);
                }
                5..=7 if !live.is_empty() => {
                    let block = live.swap_remove((r >> 16) as usize % live.len());
                    check(&block);
                    unsafe { heap.dealloc(block.ptr as *mut u8, block.size, block.align) };
                }
                _ if !live.is_empty() => {
                    let at = (r >> 16) as usize % live.len();
                    let new_size = 1 + (r >> 32) as usize % 5000;
                    let block = &mut live[at];
                    check(block);
                    let kept = block.size.min(new_size);
                    let ptr = unsafe {
                        heap.realloc(block.ptr as *mut u8, block.size, block.align, new_size)
                    } as usize;
                    assert_ne!(ptr, 0);
                    assert_eq!(ptr % block.align, 0);
                    let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, kept) };
                    assert!(bytes.iter().all(|&b| b == block.fill), "realloc lost bytes");
                    (block.ptr, block.size) = (ptr, new_size);
                    fill(block);
                }
                _ => {}
            }
        }
        // No two live blocks overlap.
        live.sort_by_key(|b| b.ptr);
        for pair in live.windows(2) {
            assert!(pair[0].ptr + pair[0].size <= pair[1].ptr, "blocks overlap");
        }
        live.iter().for_each(check);
    }

    #[test]
    fn freed_blocks_are_reused_instead_of_growing() {
        let mut heap = Heap::new(Buffer::new(64));
        for _ in 0..100_000 {
            unsafe {
                let small = heap.alloc(40, 8);
                let big = heap.alloc(3 * PAGE, 8);
                assert!(!small.is_null() && !big.is_null());
                heap.dealloc(big, 3 * PAGE, 8);
                heap.dealloc(small, 40, 8);
            }
        }
        // One page for the small class, four (3 pages round up to 4) for the big one.
        assert_eq!(heap.source.grown, 5);
    }

    #[test]
    fn skipped_bytes_serve_smaller_requests() {
        let mut heap = Heap::new(Buffer::new(4));
        unsafe {
            let a = heap.alloc(16, 1) as usize;
            // The next 4 KiB block starts at the page's second 4 KiB; the gap after `a` is
            // retired as 16 + 32 + ... + 2048 byte blocks, which smaller requests take.
            let b = heap.alloc(4096, 1) as usize;
            assert_eq!(b - a, 4096);
            let c = heap.alloc(2048, 1) as usize;
            assert!(c > a && c + 2048 <= b, "the gap was not reused");
            assert_eq!(heap.source.grown, 1);
        }
    }

    #[test]
    fn exhaustion_and_impossible_sizes_return_null() {
        let mut heap = Heap::new(Buffer::new(2));
        unsafe {
            assert!(heap.alloc(usize::MAX / 2 + 2, 8).is_null());
            assert!(heap.alloc(4 * PAGE, 8).is_null());
            let page = heap.alloc(PAGE, 8);
            assert!(!page.is_null());
            // The last page serves small blocks until it is used up, then null.
            let mut count = 0;
            while !heap.alloc(PAGE / 4, 8).is_null() {
                count += 1;
            }
            assert_eq!(count, 4);
        }
    }

    #[test]
    fn realloc_within_a_class_stays_in_place() {
        let mut heap = Heap::new(Buffer::new(4));
        unsafe {
            let p = heap.alloc(20, 8);
            assert_eq!(heap.realloc(p, 20, 8, 32), p);
            let q = heap.realloc(p, 32, 8, 33);
            assert_ne!(q, p);
            // The old block went back on its list: the next 32-byte request gets it.
            assert_eq!(heap.alloc(24, 8), p);
        }
    }
}
