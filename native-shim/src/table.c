/* This process's registrations.
 *
 * Entries are kept sorted by start, each with pmax = the largest end among it
 * and all entries before it. Then [a, b) overlaps some entry exactly when the
 * last entry starting before b has pmax > a: one binary search, exact even when
 * registrations overlap each other.
 *
 * Readers (every hooked call) never lock: a seqlock tells them a writer was
 * busy, and they retry, yielding after a few tries. The storage is
 * reserved once with a raw mmap and never moves, so a reader racing a writer
 * can read stale values but never freed memory. Writers hold `mu`, and write
 * the ring's event for each change while they hold it (area.c), so the
 * coordinator learns of the changes in the order they happened.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "proto.h"
#include "shim.h"

struct span { uintptr_t start, pmax; };                       /* what readers touch */
/* export: the job table's export slot + 1 while published (others may hold
 * it: invalidating it revokes them first), else 0; xgen: that export's generation */
struct meta { uintptr_t end; uint64_t key; uint32_t flags, dead; uint32_t export, xgen; struct pc_jt *jt; };
#define USER_FLAGS (PINCOH_READ | PINCOH_WRITE)

/* The key -> start hash is reserved for 2 * PC_MAX_REGS slots but uses only
 * 2^bits of them, twice the live entries at most, growing as they do: keys
 * are issued in sequence and scatter, so a table sized for the maximum would
 * fault a new page in for nearly every registration until all 32 MiB were in. */
#define HASH_MAX_BITS 21
#define HASH_MIN_BITS 10
static unsigned hash_bits = HASH_MIN_BITS;
#define HASH_CAP ((size_t)1 << hash_bits)
struct slot { uint64_t key; uintptr_t start; };                /* key 0: empty */

static struct span *spans;
static struct meta *metas;
static struct slot *slots;
static _Atomic size_t count;
static _Atomic unsigned seq;
static uint64_t next_key;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Readers race with writers by design (the seqlock discards what they read
 * meanwhile), so every access to a reader-visible field is atomic, relaxed:
 * plain moves on x86, and no data race in the C11 sense (ThreadSanitizer agrees). */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static void span_copy(struct span *to, const struct span *from)
{
	STORE(to->start, LOAD(from->start));
	STORE(to->pmax, LOAD(from->pmax));
}

static void *reserve(size_t bytes)
{
	long p = syscall(SYS_mmap, 0, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p < 0 && p > -4096 ? NULL : (void *)p;
}

static int ensure_storage(void)
{
	if (spans)
		return 0;
	spans = reserve(sizeof(struct span) * PC_MAX_REGS);
	metas = reserve(sizeof(struct meta) * PC_MAX_REGS);
	slots = reserve(sizeof(struct slot) << HASH_MAX_BITS);
	if (spans && metas && slots)
		return 0;
	if (spans) syscall(SYS_munmap, spans, sizeof(struct span) * PC_MAX_REGS);
	if (metas) syscall(SYS_munmap, metas, sizeof(struct meta) * PC_MAX_REGS);
	if (slots) syscall(SYS_munmap, slots, sizeof(struct slot) << HASH_MAX_BITS);
	spans = NULL, metas = NULL, slots = NULL;
	return -ENOMEM;
}

static void write_begin(void)
{
	atomic_store_explicit(&seq, atomic_load_explicit(&seq, memory_order_relaxed) + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void write_end(void)
{
	atomic_store_explicit(&seq, atomic_load_explicit(&seq, memory_order_relaxed) + 1, memory_order_release);
}

/* number of entries with start < b (reader-safe loads). Branchless: the
 * compiler turns the step into a conditional move, so a search costs its
 * log2(n) loads and no mispredicted branches. */
static inline __attribute__((always_inline)) size_t below(size_t n, uintptr_t b)
{
	const struct span *base = spans;
	if (n == 0)
		return 0;
	while (n > 1) {
		size_t half = n / 2;
		base = LOAD(base[half].start) < b ? base + half : base;
		n -= half;
	}
	return (size_t)(base - spans) + (LOAD(base->start) < b);
}

static inline __attribute__((always_inline)) int hit_unlocked(size_t n, uintptr_t a, uintptr_t b)
{
	size_t j = below(n, b);
	return j > 0 && LOAD(spans[j - 1].pmax) > a;
}

/* A writer kept the seqlock busy through every try: wait for it, yielding,
 * without taking its lock. A hooked call never blocks on a lock that way, and
 * never touches a pthread object (an exiting thread madvises its own stack
 * after a sanitizer has finished with the thread). No writer can be the
 * interrupted frame of this very thread: writers run with the guard raised,
 * so a signal handler's hooked calls do not get here while one is busy. */
__attribute__((noinline, cold)) static int hit_waiting(uintptr_t a, uintptr_t b)
{
	for (;;) {
		unsigned s = atomic_load_explicit(&seq, memory_order_acquire);
		size_t n;
		int hit;
		if (s & 1) {
			syscall(SYS_sched_yield);
			continue;
		}
		n = atomic_load_explicit(&count, memory_order_relaxed);
		hit = n && hit_unlocked(n, a, b);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&seq, memory_order_relaxed) == s)
			return hit;
	}
}

int pc_table_hit(uintptr_t a, uintptr_t b)
{
	size_t n = atomic_load_explicit(&count, memory_order_acquire);
	if (PC_LIKELY(n == 0) || a >= b)
		return 0;
	for (int tries = 0; tries < 8; tries++) {
		unsigned s = atomic_load_explicit(&seq, memory_order_acquire);
		int hit;
		if (s & 1)
			continue;
		n = atomic_load_explicit(&count, memory_order_relaxed);
		hit = n && hit_unlocked(n, a, b);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&seq, memory_order_relaxed) == s)
			return hit;
	}
	return hit_waiting(a, b);
}

/* ---- key -> start: open addressing, linear probing, backward-shift delete ---- */

static size_t slot_of(uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - hash_bits));
}

static struct slot *hash_find(uint64_t key)
{
	for (size_t i = slot_of(key);; i = (i + 1) & (HASH_CAP - 1)) {
		if (slots[i].key == key)
			return &slots[i];
		if (slots[i].key == 0)
			return NULL;
	}
}

static void hash_put(uint64_t key, uintptr_t start)
{
	size_t i = slot_of(key);
	while (slots[i].key != 0 && slots[i].key != key)
		i = (i + 1) & (HASH_CAP - 1);
	slots[i].key = key;
	slots[i].start = start;
}

/* Keeps the load at most one half for `live` entries, doubling when needed
 * and putting every entry back (all of them are in metas and spans). */
static void hash_grow(size_t live)
{
	if (2 * live <= HASH_CAP || hash_bits == HASH_MAX_BITS)
		return;
	while (2 * live > HASH_CAP && hash_bits < HASH_MAX_BITS)
		hash_bits++;
	memset(slots, 0, sizeof(struct slot) * HASH_CAP);
	for (size_t i = 0; i < live; i++)
		hash_put(metas[i].key, spans[i].start);
}

static void hash_del(uint64_t key)
{
	struct slot *s = hash_find(key);
	size_t i, j;
	if (!s)
		return;
	i = (size_t)(s - slots);
	for (j = (i + 1) & (HASH_CAP - 1); slots[j].key; j = (j + 1) & (HASH_CAP - 1)) {
		size_t home = slot_of(slots[j].key);
		/* move j back into the hole at i unless its home lies in (i, j] */
		if (((j - home) & (HASH_CAP - 1)) >= ((j - i) & (HASH_CAP - 1))) {
			slots[i] = slots[j];
			i = j;
		}
	}
	slots[i].key = 0;
}

/* ---- writers, under mu ---- */

static void fix_pmax(size_t from, size_t n)
{
	uintptr_t m = from ? LOAD(spans[from - 1].pmax) : 0;
	for (size_t i = from; i < n; i++) {
		if (metas[i].end > m)
			m = metas[i].end;
		STORE(spans[i].pmax, m);
	}
}

static long index_of(uint64_t key)
{
	struct slot *s = slots ? hash_find(key) : NULL;
	size_t n = atomic_load_explicit(&count, memory_order_relaxed), i;
	if (!s)
		return -1;
	for (i = below(n, s->start); i < n && spans[i].start == s->start; i++)
		if (metas[i].key == key)
			return (long)i;
	return -1;
}

static void insert_at_sorted(uintptr_t start, uintptr_t end, uint64_t key, unsigned flags)
{
	size_t n = atomic_load_explicit(&count, memory_order_relaxed);
	size_t p = below(n, start + 1);  /* after every entry with the same start */
	write_begin();
	for (size_t i = n; i > p; i--)
		span_copy(&spans[i], &spans[i - 1]);
	memmove(&metas[p + 1], &metas[p], (n - p) * sizeof *metas); /* metas: writers only */
	STORE(spans[p].start, start);
	metas[p] = (struct meta){ .end = end, .key = key, .flags = flags };
	fix_pmax(p, n + 1);
	atomic_store_explicit(&count, n + 1, memory_order_relaxed);
	write_end();
	hash_grow(n + 1); /* the new entry is in the arrays already */
	hash_put(key, start);
}

/* Drops every entry marked dead, in one pass from `from`. */
static void compact(size_t from)
{
	size_t n = atomic_load_explicit(&count, memory_order_relaxed), w = from;
	write_begin();
	for (size_t r = from; r < n; r++) {
		if (metas[r].dead)
			continue;
		span_copy(&spans[w], &spans[r]);
		metas[w++] = metas[r];
	}
	fix_pmax(from, w);
	atomic_store_explicit(&count, w, memory_order_relaxed);
	write_end();
}

int pc_table_add(uintptr_t start, uintptr_t end, unsigned flags, size_t limit, uint64_t *key)
{
	int rc;
	pthread_mutex_lock(&mu);
	rc = ensure_storage();
	if (rc == 0 && atomic_load_explicit(&count, memory_order_relaxed) >= limit)
		rc = -ENOSPC;
	if (rc == 0) {
		*key = ++next_key;
		insert_at_sorted(start, end, *key, flags);
		pc_emit(PC_R_REG, 0, 0, flags, *key, start, end - start);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

int pc_table_remove(uint64_t key, struct pc_hit *gone)
{
	long i;
	pthread_mutex_lock(&mu);
	i = index_of(key);
	if (i >= 0) {
		*gone = (struct pc_hit){ .key = key, .start = spans[i].start, .end = metas[i].end, .reason = PINCOH_REASON_DEREGISTER,
					 .export = metas[i].export, .xgen = metas[i].xgen, .jt = metas[i].jt };
		metas[i].dead = 1;
		compact((size_t)i);
		hash_del(key);
		pc_emit(PC_R_DEREG, 0, 0, gone->export ? PC_EV_EXPORT : 0, key, 0, 0);
	}
	pthread_mutex_unlock(&mu);
	return i >= 0 ? 0 : -ENOENT;
}

int pc_table_set_export(uint64_t key, uint32_t export, uint32_t xgen, struct pc_jt *jt)
{
	long i;
	pthread_mutex_lock(&mu);
	i = index_of(key);
	if (i >= 0)
		metas[i].export = export, metas[i].xgen = xgen, metas[i].jt = jt;
	pthread_mutex_unlock(&mu);
	return i >= 0 ? 0 : -ENOENT;
}

/* The registration's export, if it has one (1, *io filled in); else it
 * takes *io's (0); -ENOENT if it is gone. */
int pc_table_claim_export(uint64_t key, struct pc_hit *io)
{
	long i;
	int rc = -ENOENT;
	pthread_mutex_lock(&mu);
	i = index_of(key);
	if (i >= 0 && metas[i].export) {
		io->export = metas[i].export, io->xgen = metas[i].xgen, io->jt = metas[i].jt;
		rc = 1;
	} else if (i >= 0) {
		metas[i].export = io->export, metas[i].xgen = io->xgen, metas[i].jt = io->jt;
		rc = 0;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

/* Under the lock (session.c): a new coordinator knows no names. fn is told
 * of each export first (to revoke it). */
void pc_table_unpublish_all_locked(void (*fn)(const struct pc_hit *h, void *ctx), void *ctx)
{
	size_t n = atomic_load_explicit(&count, memory_order_relaxed);
	for (size_t i = 0; i < n; i++) {
		if (!metas[i].export)
			continue;
		struct pc_hit h = { .key = metas[i].key, .start = spans[i].start, .end = metas[i].end,
				    .export = metas[i].export, .xgen = metas[i].xgen, .jt = metas[i].jt };
		fn(&h, ctx);
		metas[i].export = 0, metas[i].xgen = 0, metas[i].jt = NULL;
	}
}

/* Under the lock (session.c): a new coordinator hears of every registration. */
void pc_table_announce_locked(void)
{
	size_t n = atomic_load_explicit(&count, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		pc_emit(PC_R_REG, 0, 0, metas[i].flags & USER_FLAGS, metas[i].key, spans[i].start, metas[i].end - spans[i].start);
}

int pc_table_valid(uint64_t key)
{
	int rc;
	pthread_mutex_lock(&mu);
	rc = key == 0 || key > next_key ? -EINVAL : index_of(key) >= 0;
	pthread_mutex_unlock(&mu);
	return rc;
}

int pc_table_query(uint64_t key, uintptr_t *start, uintptr_t *end)
{
	long i;
	pthread_mutex_lock(&mu);
	i = index_of(key);
	if (i >= 0) {
		*start = spans[i].start;
		*end = metas[i].end;
	}
	pthread_mutex_unlock(&mu);
	return i >= 0 ? 0 : (key == 0 || key > next_key ? -EINVAL : -ENOENT);
}

size_t pc_table_count(void)
{
	return atomic_load_explicit(&count, memory_order_relaxed);
}

void pc_table_foreach(void (*fn)(uint64_t key, uintptr_t start, uintptr_t end, unsigned flags, void *ctx), void *ctx)
{
	struct { uint64_t key; uintptr_t start, end; unsigned flags; } chunk[128];
	for (size_t at = 0;;) {
		size_t n = 0, total;
		pthread_mutex_lock(&mu);
		total = atomic_load_explicit(&count, memory_order_relaxed);
		for (; at < total && n < 128; at++, n++)
			chunk[n].key = metas[at].key, chunk[n].start = spans[at].start, chunk[n].end = metas[at].end,
			chunk[n].flags = metas[at].flags & USER_FLAGS;
		pthread_mutex_unlock(&mu);
		for (size_t i = 0; i < n; i++)
			fn(chunk[i].key, chunk[i].start, chunk[i].end, chunk[i].flags, ctx);
		if (at >= total)
			return;
	}
}

void pc_table_lock(void) { pthread_mutex_lock(&mu); }
void pc_table_unlock(void) { pthread_mutex_unlock(&mu); }

/* The child of fork starts with no registrations (and must not inherit a held lock). */
void pc_table_reset_child(void)
{
	pthread_mutex_init(&mu, NULL);
	atomic_store(&count, 0);
	atomic_store(&seq, 0);
	if (spans) {
		syscall(SYS_munmap, spans, sizeof(struct span) * PC_MAX_REGS);
		syscall(SYS_munmap, metas, sizeof(struct meta) * PC_MAX_REGS);
		syscall(SYS_munmap, slots, sizeof(struct slot) << HASH_MAX_BITS);
		spans = NULL, metas = NULL, slots = NULL;
		hash_bits = HASH_MIN_BITS;
	}
}

/* ---- applying a hooked call ---- */

static void push(struct pc_hits *h, int follow, const struct meta *m, uintptr_t s, int reason)
{
	size_t *n = follow ? &h->n_follow : &h->n_inval;
	struct pc_hit *arr = follow ? h->follow : h->inval;
	if (*n == h->cap) {
		/* Outgrew the stack room: one mapping big enough for every entry, twice. */
		size_t total = atomic_load_explicit(&count, memory_order_relaxed);
		size_t bytes = 2 * total * sizeof(struct pc_hit);
		struct pc_hit *big = reserve(bytes);
		if (!big)
			return; /* cannot record it: the entry stays dead, only its callback is lost */
		memcpy(big, h->inval, h->n_inval * sizeof *big);
		memcpy(big + total, h->follow, h->n_follow * sizeof *big);
		if (h->big)
			syscall(SYS_munmap, h->big, h->big_bytes);
		h->big = big, h->big_bytes = bytes;
		h->inval = big, h->follow = big + total, h->cap = total;
		arr = follow ? h->follow : h->inval;
	}
	arr[(*n)++] = (struct pc_hit){ .key = m->key, .start = s, .end = m->end, .reason = reason, .export = m->export, .xgen = m->xgen, .jt = m->jt };
}

static void scan(const struct pc_event *ev, uintptr_t a, uintptr_t b, int follow, struct pc_hits *h, size_t *first_dead)
{
	size_t n = atomic_load_explicit(&count, memory_order_relaxed);
	for (size_t i = below(n, b); i-- > 0 && spans[i].pmax > a;) {
		struct meta *m = &metas[i];
		int act;
		if (m->dead || m->end <= a)
			continue;
		act = pc_policy(ev, spans[i].start, m->end, m->flags & USER_FLAGS, follow);
		if (act == PC_ACT_KEEP)
			continue;
		h->published |= m->export != 0;
		if (act == PC_ACT_INVALIDATE) {
			m->dead = 1;
			if (i < *first_dead)
				*first_dead = i;
			push(h, 0, m, spans[i].start, ev->reason);
			/* exit and exec: one event says "everything", below */
			if (ev->reason != PINCOH_REASON_EXIT)
				pc_emit(PC_R_INVAL, (uint16_t)ev->reason, h->call, m->export ? PC_EV_EXPORT : 0, m->key, 0, 0);
		} else {
			push(h, 1, m, spans[i].start, ev->reason);
			pc_emit(PC_R_MOVING, (uint16_t)ev->reason, h->call, m->export ? PC_EV_EXPORT : 0, m->key, 0, 0);
		}
	}
}

void pc_table_apply(const struct pc_event *ev, int follow, uint32_t call, struct pc_hits *h)
{
	size_t first_dead = (size_t)-1;
	h->inval = h->local;
	h->follow = h->local + 16;
	h->cap = 16;
	h->n_inval = h->n_follow = 0;
	h->big = NULL;
	h->big_bytes = 0;
	h->call = call;
	h->published = 0;
	pthread_mutex_lock(&mu);
	if (spans) {
		scan(ev, ev->start, ev->end, follow, h, &first_dead);
		if (ev->dest_end)
			scan(ev, ev->dest, ev->dest_end, follow, h, &first_dead);
		if (ev->reason == PINCOH_REASON_EXIT)
			pc_emit(PC_R_INVAL, PINCOH_REASON_EXIT, call, 0, 0, 0, 0);
		if (first_dead != (size_t)-1) {
			for (size_t i = 0; i < h->n_inval; i++)
				hash_del(h->inval[i].key);
			compact(first_dead);
		}
	}
	pthread_mutex_unlock(&mu);
}

void pc_table_move(const struct pc_hits *h, uintptr_t old_start, uintptr_t new_start)
{
	pthread_mutex_lock(&mu);
	for (size_t k = 0; k < h->n_follow; k++) {
		const struct pc_hit *f = &h->follow[k];
		long i = index_of(f->key);
		uint32_t flags, export, xgen;
		struct pc_jt *jt;
		if (i < 0)
			continue; /* deregistered meanwhile */
		flags = metas[i].flags, export = metas[i].export, xgen = metas[i].xgen, jt = metas[i].jt;
		metas[i].dead = 1;
		hash_del(f->key);
		compact((size_t)i);
		insert_at_sorted(f->start - old_start + new_start, f->end - old_start + new_start, f->key, flags);
		i = index_of(f->key);
		metas[i].export = export, metas[i].xgen = xgen, metas[i].jt = jt;
		pc_emit(PC_R_MOVED, 0, h->call, 0, f->key, f->start - old_start + new_start, 0);
	}
	pthread_mutex_unlock(&mu);
}

void pc_hits_release(struct pc_hits *h)
{
	if (h->big)
		syscall(SYS_munmap, h->big, h->big_bytes);
	h->big = NULL;
}
