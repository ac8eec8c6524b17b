//! Installs `core::heap` as the global allocator of the wasm build, over `memory.grow`.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;

use crate::core::heap::{Heap, PageSource, PAGE};

struct WasmPages;

impl PageSource for WasmPages {
    fn grow(&mut self, pages: usize) -> Option<usize> {
        let previous = ::core::arch::wasm32::memory_grow(0, pages);
        (previous != usize::MAX).then(|| previous * PAGE)
    }
}

struct Allocator(UnsafeCell<Heap<WasmPages>>);

// Safety: without the atomics target feature a wasm module runs on one thread, and the
// heap never calls back into the allocator.
unsafe impl Sync for Allocator {}

#[global_allocator]
static ALLOCATOR: Allocator = Allocator(UnsafeCell::new(Heap::new(WasmPages)));

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        (*self.0.get()).alloc(layout.size(), layout.align())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        (*self.0.get()).dealloc(ptr, layout.size(), layout.align())
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        (*self.0.get()).realloc(ptr, layout.size(), layout.align(), new_size)
    }
}
