// Replacement global operator new/delete that count allocations per thread (see alloc_counter.h).
#include "bench/alloc_counter.h"

#include <cstdlib>
#include <new>

namespace {
thread_local uint64_t tAllocations = 0;

void* countedAlloc(std::size_t n) {
  ++tAllocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace

namespace whorl::bench {
uint64_t allocationCount() { return tAllocations; }
}  // namespace whorl::bench

void* operator new(std::size_t n) { return countedAlloc(n); }
void* operator new[](std::size_t n) { return countedAlloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
