/* LD_PRELOAD shim for integration/bench/footprint.sh: before each send() the process makes,
 * SHIM_SPIN_NS > 0 spins that long (CPU time without a cache footprint), and SHIM_LINES > 0
 * runs through that many distinct 64-byte blocks of code, one jmp each (a cache footprint
 * with almost no work; rounded down to hundreds, at most 600). It measures what a pooler's
 * user-space time and its code footprint cost the processes that share its cores. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

static ssize_t (*real_send)(int, const void *, size_t, int);
static long spin_ns = -1, lines = -1;

#define BLOCK asm volatile("jmp 1f\n .skip 62, 0x90\n 1:\n" ::: "memory");
#define B10 BLOCK BLOCK BLOCK BLOCK BLOCK BLOCK BLOCK BLOCK BLOCK BLOCK
#define B100 B10 B10 B10 B10 B10 B10 B10 B10 B10 B10
#define CHAIN(name) __attribute__((noinline, aligned(64))) static void name(void) { B100 }
CHAIN(c1) CHAIN(c2) CHAIN(c3) CHAIN(c4) CHAIN(c5) CHAIN(c6)
static void (*const chains[6])(void) = {c1, c2, c3, c4, c5, c6};

static long env_long(const char *name) {
  const char *v = getenv(name);
  return v ? atol(v) : 0;
}

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
  if (!real_send) real_send = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
  if (spin_ns < 0) {
    spin_ns = env_long("SHIM_SPIN_NS");
    lines = env_long("SHIM_LINES");
  }
  if (spin_ns > 0) {
    long end = now_ns() + spin_ns;
    while (now_ns() < end) {
    }
  }
  for (long i = 0; i < lines / 100 && i < 6; i++) chains[i]();
  return real_send(fd, buf, len, flags);
}
