/* This process's registrations.
 *
 * A B+tree ordered by (start, key), whose every operation is logarithmic.
 * Each node holds up to F slots: in a leaf, registrations; in an internal
 * node, children, each with a lower bound of what it holds (its separator:
 * every entry of child i is at or after separator i, and before separator
 * i + 1). What readers touch (start, pm, ref) is apart from what only
 * writers do (struct meta), so a lookup reads few cache lines:
 *   leaf      start[i], the registration's start; pm[i] = the largest end
 *             among entries 0..i of the leaf;
 *   internal  start[i], separator i's start (start[0] is never read);
 *             pm[i] = the largest end in children 0..i-1; ref[i] the child.
 * Unused slots start at UINTPTR_MAX, which no b is above. [a, b) overlaps some
 * registration exactly when, going down to the last entry starting before b,
 * one of the children passed over on the left (pm at each level) or the
 * entries before it in its leaf (pm in the leaf) ends after a: one descent,
 * exact even when registrations overlap each other. Before that descent, a
 * page filter (a bit per page that some registration touches, below) answers
 * most hooked calls, which touch nothing registered, from one or two words.
 *
 * Readers (every hooked call) never lock: a seqlock tells them a writer was
 * busy, and they retry, yielding after a few tries. The storage is reserved
 * once with a raw mmap and never moves; nodes are recycled through a free
 * list, never returned while the process lives, so a reader racing a writer
 * can read stale or torn values but never unmapped memory. Every index it
 * follows is bounded (slots within F, nodes within NODE_CAP, levels within
 * MAXH), so it cannot stray or loop; the seqlock then discards what it read.
 * Writers hold `mu`, and write the ring's event for each change while they
 * hold it (area.c), so the coordinator learns of the changes in the order
 * they happened. A key -> start hash finds a registration by key; the tree
 * is then searched on (start, key).
 *
 * Nodes other than the root hold at least F/2 slots, except along the left
 * and right edges of the tree: a full node split by an entry going after (or
 * before) everything keeps its slots and hands on only the new one, so
 * registering in ascending (or descending) address order fills nodes
 * completely. Removal borrows from or merges with a sibling; a node emptied
 * goes. At most two nodes per level are below half, so PC_MAX_REGS
 * registrations fit in NODE_CAP nodes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "area.h"
#include "policy.h"
#include "proto.h"
#include "runtime.h"
#include "table.h"

/* Slots per node, a power of two of at least 4 (the property test builds
 * with 4 and 8, to exercise splits and merges at small counts). 32: a leaf's
 * starts are four cache lines, searched in five steps; the tree is three
 * levels deep at 100,000 registrations. */
#ifndef PC_TREE_F
#define PC_TREE_F 32
#endif
#define F PC_TREE_F
#define MINF (F / 2)
#define MAXH (F >= 16 ? 12 : 32)               /* levels: 2^20 entries need 6 at F = 32 */
#define LEAVES_MAX (PC_MAX_REGS / MINF + 2)
#define NODE_CAP (LEAVES_MAX + LEAVES_MAX / (MINF - 1) + 4 * MAXH + 64)
#define NIL UINT32_MAX
#define USER_FLAGS (PINCOH_READ | PINCOH_WRITE)

_Static_assert(F >= 4 && (F & (F - 1)) == 0, "PC_TREE_F: a power of two, at least 4");

struct node {                       /* what readers touch */
	uintptr_t start[F];
	uintptr_t pm[F];
	uint32_t ref[F];                /* internal: the child */
} __attribute__((aligned(64)));

/* Writers only. export: the job table's export slot + 1 while published
 * (others may hold it: invalidating it revokes them first), else 0; xgen:
 * that export's generation. Internal nodes: key[i] is separator i's key,
 * end[i] the largest end in child i. */
struct meta {
	uint64_t key[F];
	uintptr_t end[F];
	uint32_t flags[F], export[F], xgen[F];
	struct pc_jt *jt[F];            /* the job table the export is in */
	uintptr_t maxend;               /* the largest end in the subtree */
	uint32_t n, leaf, next;         /* next: the free list */
};

/* One slot, as writers move it between nodes. */
struct item { uintptr_t start, end; uint64_t key; uint32_t ref, flags, export, xgen; struct pc_jt *jt; };

/* A way down from the root (level 0) to a leaf: the node and the slot taken. */
struct path { unsigned h; uint32_t nd[MAXH]; unsigned ix[MAXH]; };

/* The key -> start hash is reserved for 2 * PC_MAX_REGS slots but uses only
 * 2^bits of them, twice the live entries at most, growing as they do: keys
 * are issued in sequence and scatter, so a table sized for the maximum would
 * fault a new page in for nearly every registration until all 32 MiB were in. */
#define HASH_MAX_BITS 21
#define HASH_MIN_BITS 10
static unsigned hash_bits = HASH_MIN_BITS;
#define HASH_CAP ((size_t)1 << hash_bits)
struct slot { uint64_t key; uintptr_t start; };                /* key 0: empty */

static struct node *nodes;
static struct meta *metas;
static struct slot *slots;
static uint32_t root, height;       /* read by readers */
static uint32_t root_half;          /* read by readers: the root's search steps, 2^(steps - 1) */
static uint32_t nodes_used, nodes_live, free_nodes = NIL;
static _Atomic size_t count;
static _Atomic unsigned seq;

/* The page filter: a bit per 4 KiB page below 2^PF_VA_BITS, set when some
 * registration touches the page. It may hold more bits than that (never
 * fewer): a hooked call whose pages have no bit set touches nothing
 * registered, answered from one or two words whatever the number of
 * registrations; any other call goes down the tree for the exact answer.
 * Bits are kept in 32 KiB blocks, one per GiB that has registrations, found
 * through a directory of PF_DIR words: 0 nothing registered in that GiB, 1..
 * PF_BLOCKS the block's number + 1, PF_TREE no block could be had (the tree
 * answers there). Reserved once, never returned, like the nodes. */
#define PF_PAGE_SHIFT 12
#define PF_GIB_SHIFT 30
#define PF_VA_BITS 48                                   /* x86-64 and aarch64 user space */
#define PF_DIR ((size_t)1 << (PF_VA_BITS - PF_GIB_SHIFT))   /* 2^18 words, 1 MiB reserved */
#define PF_WORDS ((size_t)1 << (PF_GIB_SHIFT - PF_PAGE_SHIFT - 6)) /* 4096 words a block */
#define PF_BLOCKS 1024u                                 /* 1,024 GiB with registrations; 32 MiB reserved */
#define PF_TREE UINT32_MAX
#define PF_SPAN ((uintptr_t)64 << PF_PAGE_SHIFT)       /* longer calls ask the tree */
#define PF_REDO 64                                      /* entries re-marked after a removal, at most */
static uint32_t *pf_dir;
static uint64_t *pf_bits;
static uint32_t pf_blocks_used;
static uint64_t pf_loose;            /* removals that left bits set for lack of PF_REDO */
static uint64_t next_key;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Readers race with writers by design (the seqlock discards what they read
 * meanwhile), so every access to a reader-visible field is atomic, relaxed:
 * plain moves on x86, and no data race in the C11 sense (ThreadSanitizer agrees). */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static void *reserve(size_t bytes)
{
	long p = syscall(SYS_mmap, 0, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p < 0 && p > -4096 ? NULL : (void *)p;
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

/* ---- readers ---- */

/* The last slot among 1..F-1 whose start is below b, or 0 (reader-safe
 * loads). Branchless: the compiler turns each step into a conditional move,
 * and the index never leaves the node whatever the slots hold. */
static inline __attribute__((always_inline)) unsigned slot_below(const struct node *x, uintptr_t b)
{
	unsigned i = 0;
#pragma GCC unroll 8
	for (unsigned half = F / 2; half; half /= 2)
		i = LOAD(x->start[i + half]) < b ? i + half : i;
	return i;
}

/* The root, often far from full, is searched over its used slots only:
 * root_half steps (the same for every lookup until it changes). */
static inline __attribute__((always_inline)) unsigned root_below(const struct node *x, uintptr_t b, unsigned half)
{
	unsigned i = 0;
	if (half > F / 2)
		half = F / 2;
	for (; half; half /= 2)
		i = LOAD(x->start[i + half]) < b ? i + half : i;
	return i;
}

static inline __attribute__((always_inline)) int hit_unlocked(uintptr_t a, uintptr_t b)
{
	const struct node *base = __atomic_load_n(&nodes, __ATOMIC_RELAXED), *x;
	uint32_t h = LOAD(height), nd = LOAD(root);
	uintptr_t m = 0;
	unsigned i;
	if (h == 0 || h > MAXH)
		h = 1;
	x = &base[nd < NODE_CAP ? nd : 0];
	i = root_below(x, b, LOAD(root_half));
	while (--h > 0) {
		uintptr_t pm = LOAD(x->pm[i]);
		m = pm > m ? pm : m;
		nd = LOAD(x->ref[i]);
		x = (const struct node *)((const char *)base + (nd < NODE_CAP * sizeof(struct node) ? nd : 0));
		i = slot_below(x, b);
	}
	return m > a || (LOAD(x->start[i]) < b && LOAD(x->pm[i]) > a);
}

/* 1 if no page of [a, b) has its filter bit set (nothing registered touches
 * it); 0: ask the tree. At most two words: a call longer than PF_SPAN, or
 * past the filter's reach, asks the tree. Every index is bounded whatever
 * the words hold. */
static inline __attribute__((always_inline)) int pf_clear(uintptr_t a, uintptr_t b)
{
	const uint32_t *dir = __atomic_load_n(&pf_dir, __ATOMIC_RELAXED);
	const uint64_t *bits = __atomic_load_n(&pf_bits, __ATOMIC_RELAXED);
	uintptr_t p, q, w;
	if (!dir || b - a > PF_SPAN || b > (uintptr_t)1 << PF_VA_BITS)
		return 0;
	p = a >> PF_PAGE_SHIFT, q = (b - 1) >> PF_PAGE_SHIFT;
	for (w = p >> 6; w <= q >> 6; w++) {
		uint32_t d = LOAD(dir[w / PF_WORDS]);
		uint64_t mask = ~(uint64_t)0;
		if (d == 0)
			continue;
		if (d > PF_BLOCKS)
			return 0;
		if (w == p >> 6)
			mask <<= p & 63;
		if (w == q >> 6)
			mask &= ~(uint64_t)0 >> (63 - (q & 63));
		if (LOAD(bits[(size_t)(d - 1) * PF_WORDS + w % PF_WORDS]) & mask)
			return 0;
	}
	return 1;
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
		int hit;
		if (s & 1) {
			syscall(SYS_sched_yield);
			continue;
		}
		hit = atomic_load_explicit(&count, memory_order_relaxed) && !pf_clear(a, b) && hit_unlocked(a, b);
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
		hit = atomic_load_explicit(&count, memory_order_relaxed) && !pf_clear(a, b) && hit_unlocked(a, b);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&seq, memory_order_relaxed) == s)
			return hit;
	}
	return hit_waiting(a, b);
}

/* ---- nodes, under mu ---- */

static uint32_t node_new(int leaf)
{
	uint32_t x;
	if (free_nodes != NIL)
		x = free_nodes, free_nodes = metas[x].next;
	else if (nodes_used < NODE_CAP)
		x = nodes_used++;
	else
		return NIL;
	nodes_live++;
	metas[x].n = 0, metas[x].leaf = (uint32_t)leaf, metas[x].maxend = 0;
	for (unsigned i = 0; i < F; i++) {
		STORE(nodes[x].start[i], UINTPTR_MAX);
		STORE(nodes[x].pm[i], 0);
		STORE(nodes[x].ref[i], 0);
	}
	return x;
}

/* A reader may still be in it: it stays as it is until reused. */
static void node_free(uint32_t x)
{
	metas[x].next = free_nodes;
	free_nodes = x;
	nodes_live--;
}

static void get(uint32_t x, unsigned i, struct item *it)
{
	const struct meta *w = &metas[x];
	*it = (struct item){ .start = nodes[x].start[i], .ref = nodes[x].ref[i] / (uint32_t)sizeof(struct node), .key = w->key[i], .end = w->end[i],
			     .flags = w->flags[i], .export = w->export[i], .xgen = w->xgen[i], .jt = w->jt[i] };
}

static void put(uint32_t x, unsigned i, const struct item *it)
{
	struct meta *w = &metas[x];
	STORE(nodes[x].start[i], it->start);
	STORE(nodes[x].ref[i], it->ref * (uint32_t)sizeof(struct node));
	w->key[i] = it->key, w->end[i] = it->end, w->flags[i] = it->flags, w->export[i] = it->export, w->xgen[i] = it->xgen;
	w->jt[i] = it->jt;
}

static uint32_t child(uint32_t x, unsigned i)
{
	return nodes[x].ref[i] / (uint32_t)sizeof(struct node);
}

static void move_slot(uint32_t to, unsigned j, uint32_t from, unsigned i)
{
	struct item it;
	get(from, i, &it);
	put(to, j, &it);
}

/* Slots n.. are unused. */
static void set_n(uint32_t x, unsigned n)
{
	for (unsigned i = n; i < metas[x].n; i++)
		STORE(nodes[x].start[i], UINTPTR_MAX);
	metas[x].n = n;
}

/* Recomputes x's pm from slot `from` on, and its maxend, from its slots'
 * ends (pm of the slots before `from` stands). */
static void refresh_from(uint32_t x, unsigned from)
{
	struct meta *w = &metas[x];
	uintptr_t m = 0;
	if (from > 0) {
		m = nodes[x].pm[from - 1];
		if (!w->leaf && w->end[from - 1] > m)
			m = w->end[from - 1];
	}
	for (unsigned i = from; i < w->n; i++) {
		if (w->leaf && w->end[i] > m)
			m = w->end[i];
		if (nodes[x].pm[i] != m)
			STORE(nodes[x].pm[i], m);
		if (!w->leaf && w->end[i] > m)
			m = w->end[i];
	}
	w->maxend = m;
}

static void refresh(uint32_t x)
{
	refresh_from(x, 0);
}

/* x's maxend changed: its parents' ends, up to where nothing changes. */
static void propagate(const struct path *p, unsigned l)
{
	for (; l > 0; l--) {
		uint32_t parent = p->nd[l - 1];
		unsigned ix = p->ix[l - 1];
		if (metas[parent].end[ix] == metas[p->nd[l]].maxend)
			return;
		metas[parent].end[ix] = metas[p->nd[l]].maxend;
		refresh_from(parent, ix + 1);
	}
}

static void insert_slot(uint32_t x, unsigned at, const struct item *it)
{
	for (unsigned i = metas[x].n; i > at; i--)
		move_slot(x, i, x, i - 1);
	put(x, at, it);
	metas[x].n++;
}

static void remove_slot(uint32_t x, unsigned at)
{
	unsigned n = metas[x].n;
	for (unsigned i = at; i + 1 < n; i++)
		move_slot(x, i, x, i + 1);
	set_n(x, n - 1);
}

/* Internal node x: the last child whose separator is at or before (s, k)
 * (strict: before it), or 0. */
static unsigned child_for(uint32_t x, uintptr_t s, uint64_t k, int strict)
{
	unsigned lo = 0, hi = metas[x].n;
	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;
		uintptr_t ms = nodes[x].start[mid];
		/* the key only when the starts are equal: another cache line */
		if (ms != s ? ms < s : strict ? metas[x].key[mid] < k : metas[x].key[mid] <= k)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Leaf x: how many entries are before (s, k). */
static unsigned leaf_pos(uint32_t x, uintptr_t s, uint64_t k)
{
	unsigned lo = 0, hi = metas[x].n;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		uintptr_t ms = nodes[x].start[mid];
		if (ms != s ? ms < s : metas[x].key[mid] < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The way to where (s, k) is or would go; the leaf's slot is its position. */
/* A node about to be searched and changed: every line of it asked for at
 * once, not one miss after another (a leaf among many is seldom cached). */
static void prefetch(uint32_t x)
{
	for (size_t o = 0; o < sizeof(struct node); o += 64)
		__builtin_prefetch((const char *)&nodes[x] + o, 1);
	for (size_t o = 0; o < sizeof(struct meta); o += 64)
		__builtin_prefetch((const char *)&metas[x] + o, 1);
}

static void descend(uintptr_t s, uint64_t k, struct path *p)
{
	uint32_t x = root;
	unsigned l;
	p->h = height;
	for (l = 0; l + 1 < p->h; l++) {
		p->nd[l] = x;
		p->ix[l] = child_for(x, s, k, 0);
		x = child(x, p->ix[l]);
		prefetch(x);
	}
	p->nd[l] = x;
	p->ix[l] = leaf_pos(x, s, k);
}

/* The way to entry (s, k); 0 if there is none. */
static int find(uintptr_t s, uint64_t k, struct path *p)
{
	uint32_t x;
	unsigned i;
	descend(s, k, p);
	x = p->nd[p->h - 1], i = p->ix[p->h - 1];
	return i < metas[x].n && nodes[x].start[i] == s && metas[x].key[i] == k;
}

/* Moves a path at a leaf's last entry on to the next entry: 0 past the last. */
static int step_leaf(struct path *p)
{
	int l = (int)p->h - 2;
	while (l >= 0 && p->ix[l] + 1 >= metas[p->nd[l]].n)
		l--;
	if (l < 0)
		return 0;
	p->ix[l]++;
	for (l++; l < (int)p->h; l++) {
		p->nd[l] = child(p->nd[l - 1], p->ix[l - 1]);
		p->ix[l] = 0;
	}
	return metas[p->nd[p->h - 1]].n > 0;
}

/* The first entry at or after (s, k): 0 if none. */
static int seek(uintptr_t s, uint64_t k, struct path *p)
{
	descend(s, k, p);
	return p->ix[p->h - 1] < metas[p->nd[p->h - 1]].n || step_leaf(p);
}

static int next(struct path *p)
{
	return ++p->ix[p->h - 1] < metas[p->nd[p->h - 1]].n || step_leaf(p);
}

static void at_path(const struct path *p, struct item *it)
{
	get(p->nd[p->h - 1], p->ix[p->h - 1], it);
}

/* Every node of the path above level l is the last (right) or first child. */
static int on_edge(const struct path *p, unsigned l, int right)
{
	for (unsigned j = 0; j < l; j++)
		if (p->ix[j] != (right ? metas[p->nd[j]].n - 1 : 0))
			return 0;
	return 1;
}

/* Inserts an entry. Needs at most height + 1 free nodes (pc_table_add checks). */
static void tree_insert(const struct item *entry)
{
	struct path p;
	struct item it = *entry, up;
	unsigned l, at;
	int edge = 0; /* the split below kept everything but the new slot: +1 right, -1 left */
	descend(it.start, it.key, &p);
	l = p.h - 1, at = p.ix[l];
	for (;;) {
		uint32_t x = p.nd[l], y;
		int leaf = (int)metas[x].leaf;
		unsigned cut = (F + 1) / 2, total = F + 1;
		if (metas[x].n < F) {
			insert_slot(x, at, &it);
			refresh_from(x, at);
			break;
		}
		/* Full: the first `cut` of the F + 1 slots stay, the rest go to y. */
		if (at == F && (leaf || edge > 0) && on_edge(&p, l, 1))
			cut = F, edge = 1;
		else if (at == (leaf ? 0u : 1u) && (leaf || edge < 0) && on_edge(&p, l, 0))
			cut = 1, edge = -1;
		else
			edge = 0;
		y = node_new(leaf);
		for (unsigned v = cut; v < total; v++) {
			if (v == at)
				put(y, v - cut, &it);
			else
				move_slot(y, v - cut, x, v < at ? v : v - 1);
		}
		metas[y].n = total - cut;
		if (at < cut) {
			for (unsigned v = cut - 1; v > at; v--)
				move_slot(x, v, x, v - 1);
			put(x, at, &it);
		}
		set_n(x, cut);
		refresh(x);
		refresh(y);
		get(y, 0, &up);
		up.end = metas[y].maxend, up.ref = y;
		if (l == 0) {
			/* a new root above x and y */
			uint32_t r = node_new(0);
			struct item down;
			get(x, 0, &down);
			down.end = metas[x].maxend, down.ref = x;
			put(r, 0, &down);
			put(r, 1, &up);
			metas[r].n = 2;
			refresh(r);
			STORE(root, r);
			STORE(height, height + 1);
			return;
		}
		metas[p.nd[l - 1]].end[p.ix[l - 1]] = metas[x].maxend;
		it = up, at = p.ix[l - 1] + 1, l--;
	}
	propagate(&p, l);
}

/* Internal nodes: slot 0 of the right one, moved into the left, takes the
 * parent's separator of the right one (the bound between them). */
static void move_in(uint32_t to, unsigned j, uint32_t from, unsigned i, uint32_t parent, unsigned si)
{
	struct item it;
	get(from, i, &it);
	if (i == 0 && !metas[from].leaf)
		it.start = nodes[parent].start[si], it.key = metas[parent].key[si];
	put(to, j, &it);
}

/* Siblings left and right (parent's slot si): evens them out, or merges
 * right into left if they fit in one node. Returns 1 if merged. */
static int rebalance(uint32_t parent, unsigned si, uint32_t left, uint32_t right)
{
	unsigned nl = metas[left].n, nr = metas[right].n, total = nl + nr, keep = total / 2;
	if (total <= F) {
		for (unsigned i = 0; i < nr; i++)
			move_in(left, nl + i, right, i, parent, si);
		metas[left].n = total;
		refresh(left);
		metas[parent].end[si - 1] = metas[left].maxend;
		remove_slot(parent, si);
		node_free(right);
		return 1;
	}
	if (nl < keep) {
		/* the first nr - (total - keep) slots of right go to the end of left */
		unsigned k = keep - nl;
		for (unsigned i = 0; i < k; i++)
			move_in(left, nl + i, right, i, parent, si);
		metas[left].n = keep;
		for (unsigned i = 0; i + k < nr; i++)
			move_slot(right, i, right, i + k);
		set_n(right, nr - k);
	} else {
		/* the last nl - keep slots of left go to the front of right */
		unsigned k = nl - keep;
		for (unsigned i = nr; i-- > 0;)
			move_slot(right, i + k, right, i);
		metas[right].n = nr + k;
		if (!metas[right].leaf) {
			/* right's old first child now sits after a real separator */
			STORE(nodes[right].start[k], nodes[parent].start[si]);
			metas[right].key[k] = metas[parent].key[si];
		}
		for (unsigned i = 0; i < k; i++)
			move_slot(right, i, left, keep + i);
		set_n(left, keep);
	}
	refresh(left);
	refresh(right);
	STORE(nodes[parent].start[si], nodes[right].start[0]);
	metas[parent].key[si] = metas[right].key[0];
	metas[parent].end[si - 1] = metas[left].maxend;
	metas[parent].end[si] = metas[right].maxend;
	return 0;
}

/* Removes entry (s, k), telling what it was: 0, or -1 if there is none. */
static int tree_remove(uintptr_t s, uint64_t k, struct item *gone)
{
	struct path p;
	unsigned l;
	if (!find(s, k, &p))
		return -1;
	l = p.h - 1;
	at_path(&p, gone);
	remove_slot(p.nd[l], p.ix[l]);
	refresh_from(p.nd[l], p.ix[l]);
	if (atomic_load_explicit(&count, memory_order_relaxed) == 1) {
		/* the last one: the empty leaf is the whole tree */
		for (unsigned j = 0; j < l; j++)
			node_free(p.nd[j]);
		STORE(root, p.nd[l]);
		STORE(height, 1);
		return 0;
	}
	/* Up from the leaf, which lost a slot: a node gone below half borrows
	 * from a sibling or merges with it, and its parent may then be short. */
	for (; l > 0; l--) {
		uint32_t x = p.nd[l], parent = p.nd[l - 1];
		unsigned ix = p.ix[l - 1], n = metas[x].n, pn = metas[parent].n;
		if (n >= MINF || (n > 0 && pn < 2)) {
			/* full enough, or alone under its parent on an edge of the tree */
			propagate(&p, l);
			break;
		}
		if (n == 0) {
			remove_slot(parent, ix);
			node_free(x);
		} else if (!rebalance(parent, ix + 1 < pn ? ix + 1 : ix, ix + 1 < pn ? x : child(parent, ix - 1),
				      ix + 1 < pn ? child(parent, ix + 1) : x)) {
			/* evened out: the parent keeps its children */
			refresh(parent);
			propagate(&p, l - 1);
			break;
		}
		refresh(parent);
	}
	while (!metas[root].leaf && metas[root].n == 1) {
		uint32_t old = root;
		STORE(root, child(old, 0));
		STORE(height, height - 1);
		node_free(old);
	}
	return 0;
}

/* The last entry before (us, uk) in x's subtree whose end is above a. */
static int last_over(uint32_t x, uintptr_t us, uint64_t uk, uintptr_t a, struct path *p, unsigned l)
{
	p->nd[l] = x;
	if (metas[x].leaf) {
		for (unsigned i = leaf_pos(x, us, uk); i-- > 0;)
			if (metas[x].end[i] > a) {
				p->ix[l] = i, p->h = l + 1;
				return 1;
			}
		return 0;
	}
	for (unsigned i = child_for(x, us, uk, 1) + 1; i-- > 0;) {
		p->ix[l] = i;
		if (metas[x].end[i] > a && last_over(child(x, i), us, uk, a, p, l + 1))
			return 1;
	}
	return 0;
}

/* ---- the page filter's writers, inside a write (seqlock odd) ---- */

/* Sets (on) or clears the bits of pages [p, q], within the filter's reach. */
static void pf_mark(uintptr_t p, uintptr_t q, int on)
{
	for (uintptr_t w = p >> 6; w <= q >> 6; w++) {
		uint32_t *d = &pf_dir[w / PF_WORDS];
		uint64_t mask = ~(uint64_t)0, *word;
		if (*d == 0) {
			if (!on) {
				w |= PF_WORDS - 1; /* nothing in this GiB: on to the next */
				continue;
			}
			STORE(*d, pf_blocks_used < PF_BLOCKS ? ++pf_blocks_used : PF_TREE);
		}
		if (*d == PF_TREE) {
			w |= PF_WORDS - 1;
			continue;
		}
		if (w == p >> 6)
			mask <<= p & 63;
		if (w == q >> 6)
			mask &= ~(uint64_t)0 >> (63 - (q & 63));
		word = &pf_bits[(size_t)(*d - 1) * PF_WORDS + w % PF_WORDS];
		STORE(*word, on ? *word | mask : *word & ~mask);
	}
}

/* The pages [s, e) touches, within the filter's reach: 0 if none. */
static int pf_pages(uintptr_t s, uintptr_t e, uintptr_t *p, uintptr_t *q)
{
	uintptr_t top = (uintptr_t)1 << PF_VA_BITS;
	if (s >= top || s >= e)
		return 0;
	*p = s >> PF_PAGE_SHIFT;
	*q = ((e < top ? e : top) - 1) >> PF_PAGE_SHIFT;
	return 1;
}

static void pf_add(uintptr_t s, uintptr_t e)
{
	uintptr_t p, q;
	if (pf_pages(s, e, &p, &q))
		pf_mark(p, q, 1);
}

/* [s, e) has left the tree: its pages' bits cleared, then set again for
 * every entry still touching them (PF_REDO of them at most: past that, the
 * pages keep their bits, which costs later calls there a descent, never a
 * wrong answer). */
static void pf_remove(uintptr_t s, uintptr_t e)
{
	uintptr_t p, q, us;
	uint64_t uk = 0;
	struct path path;
	unsigned n = 0;
	if (!pf_pages(s, e, &p, &q))
		return;
	pf_mark(p, q, 0);
	us = (q + 1) << PF_PAGE_SHIFT;
	while (last_over(root, us, uk, p << PF_PAGE_SHIFT, &path, 0)) {
		struct item it;
		uintptr_t ip, iq;
		if (++n > PF_REDO) {
			pf_mark(p, q, 1);
			pf_loose++;
			return;
		}
		at_path(&path, &it);
		us = it.start, uk = it.key;
		if (pf_pages(it.start, it.end, &ip, &iq))
			pf_mark(ip > p ? ip : p, iq < q ? iq : q, 1);
	}
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
 * and putting every entry of the tree back. */
static void hash_grow(size_t live)
{
	struct path p;
	if (2 * live <= HASH_CAP || hash_bits == HASH_MAX_BITS)
		return;
	while (2 * live > HASH_CAP && hash_bits < HASH_MAX_BITS)
		hash_bits++;
	memset(slots, 0, sizeof(struct slot) * HASH_CAP);
	for (int ok = seek(0, 0, &p); ok; ok = next(&p)) {
		struct item it;
		at_path(&p, &it);
		hash_put(it.key, it.start);
	}
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

static int ensure_storage(void)
{
	if (nodes)
		return 0;
	nodes = reserve(sizeof(struct node) * NODE_CAP);
	metas = reserve(sizeof(struct meta) * NODE_CAP);
	slots = reserve(sizeof(struct slot) << HASH_MAX_BITS);
	pf_dir = reserve(PF_DIR * sizeof *pf_dir);
	pf_bits = reserve(PF_BLOCKS * PF_WORDS * sizeof *pf_bits);
	if (nodes && metas && slots && pf_dir && pf_bits) {
		nodes_used = nodes_live = 0, free_nodes = NIL;
		pf_blocks_used = 0, pf_loose = 0;
		STORE(root, node_new(1));
		STORE(height, 1);
		STORE(root_half, 0);
		return 0;
	}
	if (nodes) syscall(SYS_munmap, nodes, sizeof(struct node) * NODE_CAP);
	if (metas) syscall(SYS_munmap, metas, sizeof(struct meta) * NODE_CAP);
	if (slots) syscall(SYS_munmap, slots, sizeof(struct slot) << HASH_MAX_BITS);
	if (pf_dir) syscall(SYS_munmap, pf_dir, PF_DIR * sizeof *pf_dir);
	if (pf_bits) syscall(SYS_munmap, pf_bits, PF_BLOCKS * PF_WORDS * sizeof *pf_bits);
	nodes = NULL, metas = NULL, slots = NULL, pf_dir = NULL, pf_bits = NULL;
	return -ENOMEM;
}

/* The way to the registration with this key: 0 if there is none. */
static int find_key(uint64_t key, struct path *p)
{
	struct slot *s = slots ? hash_find(key) : NULL;
	return s && find(s->start, key, p);
}

/* At the end of every change, before readers may look. */
static void publish_root(void)
{
	unsigned half = 0;
	if (metas[root].n > 1)
		for (half = 1; 2 * half < metas[root].n; half *= 2)
			;
	if (root_half != half)
		STORE(root_half, half);
}

static void add_locked(const struct item *it)
{
	size_t n = atomic_load_explicit(&count, memory_order_relaxed);
	write_begin();
	tree_insert(it);
	pf_add(it->start, it->end);
	atomic_store_explicit(&count, n + 1, memory_order_relaxed);
	publish_root();
	write_end();
	hash_grow(n + 1); /* the new entry is in the tree already */
	hash_put(it->key, it->start);
}

static void remove_locked(const struct item *it)
{
	struct item gone;
	write_begin();
	tree_remove(it->start, it->key, &gone);
	pf_remove(gone.start, gone.end);
	atomic_store_explicit(&count, atomic_load_explicit(&count, memory_order_relaxed) - 1, memory_order_relaxed);
	publish_root();
	write_end();
	hash_del(it->key);
}

int pc_table_add(uintptr_t start, uintptr_t end, unsigned flags, size_t limit, uint64_t *key)
{
	int rc;
	pthread_mutex_lock(&mu);
	rc = ensure_storage();
	if (limit > PC_MAX_REGS)
		limit = PC_MAX_REGS;
	if (rc == 0 && atomic_load_explicit(&count, memory_order_relaxed) >= limit)
		rc = -ENOSPC;
	/* cannot happen below PC_MAX_REGS (NODE_CAP is sized for it), checked all the same */
	if (rc == 0 && NODE_CAP - nodes_live < MAXH + 2)
		rc = -ENOMEM;
	if (rc == 0) {
		*key = ++next_key;
		add_locked(&(struct item){ .start = start, .end = end, .key = *key, .flags = flags });
		pc_emit(PC_R_REG, 0, 0, flags, *key, start, end - start);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

int pc_table_remove(uint64_t key, struct pc_hit *gone)
{
	struct path p;
	struct item it;
	int found;
	pthread_mutex_lock(&mu);
	found = find_key(key, &p);
	if (found) {
		at_path(&p, &it);
		*gone = (struct pc_hit){ .key = key, .start = it.start, .end = it.end, .reason = PINCOH_REASON_DEREGISTER,
					 .export = it.export, .xgen = it.xgen, .jt = it.jt };
		remove_locked(&it);
		pc_emit(PC_R_DEREG, 0, 0, it.export ? PC_EV_EXPORT : 0, key, 0, 0);
	}
	pthread_mutex_unlock(&mu);
	return found ? 0 : -ENOENT;
}

int pc_table_set_export(uint64_t key, uint32_t export, uint32_t xgen, struct pc_jt *jt)
{
	struct path p;
	int found;
	pthread_mutex_lock(&mu);
	found = find_key(key, &p);
	if (found) {
		struct meta *w = &metas[p.nd[p.h - 1]];
		unsigned i = p.ix[p.h - 1];
		w->export[i] = export, w->xgen[i] = xgen, w->jt[i] = jt;
	}
	pthread_mutex_unlock(&mu);
	return found ? 0 : -ENOENT;
}

/* The registration's export, if it has one (1, *io filled in); else it
 * takes *io's (0); -ENOENT if it is gone. */
int pc_table_claim_export(uint64_t key, struct pc_hit *io)
{
	struct path p;
	int rc = -ENOENT;
	pthread_mutex_lock(&mu);
	if (find_key(key, &p)) {
		struct meta *w = &metas[p.nd[p.h - 1]];
		unsigned i = p.ix[p.h - 1];
		if (w->export[i]) {
			io->export = w->export[i], io->xgen = w->xgen[i], io->jt = w->jt[i];
			rc = 1;
		} else {
			w->export[i] = io->export, w->xgen[i] = io->xgen, w->jt[i] = io->jt;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

/* Under the lock (init.c's adopt): a new coordinator knows no names. fn is told
 * of each export first (to revoke it). */
void pc_table_unpublish_all_locked(void (*fn)(const struct pc_hit *h, void *ctx), void *ctx)
{
	struct path p;
	if (!nodes)
		return;
	for (int ok = seek(0, 0, &p); ok; ok = next(&p)) {
		struct meta *w = &metas[p.nd[p.h - 1]];
		unsigned i = p.ix[p.h - 1];
		if (!w->export[i])
			continue;
		struct pc_hit h = { .key = w->key[i], .start = nodes[p.nd[p.h - 1]].start[i], .end = w->end[i],
				    .export = w->export[i], .xgen = w->xgen[i], .jt = w->jt[i] };
		fn(&h, ctx);
		w->export[i] = 0, w->xgen[i] = 0, w->jt[i] = NULL;
	}
}

/* Under the lock (init.c's adopt): a new coordinator hears of every registration. */
void pc_table_announce_locked(void)
{
	struct path p;
	if (!nodes)
		return;
	for (int ok = seek(0, 0, &p); ok; ok = next(&p)) {
		struct item it;
		at_path(&p, &it);
		pc_emit(PC_R_REG, 0, 0, it.flags & USER_FLAGS, it.key, it.start, it.end - it.start);
	}
}

int pc_table_valid(uint64_t key)
{
	struct path p;
	int rc;
	pthread_mutex_lock(&mu);
	rc = key == 0 || key > next_key ? -EINVAL : find_key(key, &p);
	pthread_mutex_unlock(&mu);
	return rc;
}

int pc_table_query(uint64_t key, uintptr_t *start, uintptr_t *end)
{
	struct path p;
	int found;
	pthread_mutex_lock(&mu);
	found = find_key(key, &p);
	if (found) {
		struct item it;
		at_path(&p, &it);
		*start = it.start;
		*end = it.end;
	}
	pthread_mutex_unlock(&mu);
	return found ? 0 : (key == 0 || key > next_key ? -EINVAL : -ENOENT);
}

size_t pc_table_count(void)
{
	return atomic_load_explicit(&count, memory_order_relaxed);
}

/* In (start, key) order, each chunk from just after the last one copied. */
void pc_table_foreach(void (*fn)(uint64_t key, uintptr_t start, uintptr_t end, unsigned flags, void *ctx), void *ctx)
{
	struct { uint64_t key; uintptr_t start, end; unsigned flags; } chunk[128];
	uintptr_t from = 0;
	uint64_t after = 0;
	for (;;) {
		struct path p;
		size_t n = 0;
		int more = 0;
		pthread_mutex_lock(&mu);
		if (nodes)
			for (more = seek(from, after + 1, &p); more && n < 128; more = next(&p), n++) {
				struct item it;
				at_path(&p, &it);
				chunk[n].key = it.key, chunk[n].start = it.start, chunk[n].end = it.end, chunk[n].flags = it.flags & USER_FLAGS;
			}
		pthread_mutex_unlock(&mu);
		for (size_t i = 0; i < n; i++)
			fn(chunk[i].key, chunk[i].start, chunk[i].end, chunk[i].flags, ctx);
		if (!more)
			return;
		from = chunk[n - 1].start, after = chunk[n - 1].key;
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
	if (nodes) {
		syscall(SYS_munmap, nodes, sizeof(struct node) * NODE_CAP);
		syscall(SYS_munmap, metas, sizeof(struct meta) * NODE_CAP);
		syscall(SYS_munmap, slots, sizeof(struct slot) << HASH_MAX_BITS);
		syscall(SYS_munmap, pf_dir, PF_DIR * sizeof *pf_dir);
		syscall(SYS_munmap, pf_bits, PF_BLOCKS * PF_WORDS * sizeof *pf_bits);
		nodes = NULL, metas = NULL, slots = NULL, pf_dir = NULL, pf_bits = NULL;
		hash_bits = HASH_MIN_BITS;
	}
}

/* ---- applying a hooked call ---- */

/* Entries in the table when the call began: no call records more. */
static size_t apply_room;

static void push(struct pc_hits *h, int follow, const struct item *it, int reason)
{
	size_t *n = follow ? &h->n_follow : &h->n_inval;
	struct pc_hit *arr = follow ? h->follow : h->inval;
	if (*n == h->cap) {
		/* Outgrew the stack room: one mapping big enough for every entry, twice. */
		size_t total = apply_room;
		size_t bytes = 2 * total * sizeof(struct pc_hit);
		struct pc_hit *big = reserve(bytes);
		if (!big)
			return; /* cannot record it: the entry goes all the same, only its callback is lost */
		memcpy(big, h->inval, h->n_inval * sizeof *big);
		memcpy(big + total, h->follow, h->n_follow * sizeof *big);
		if (h->big)
			syscall(SYS_munmap, h->big, h->big_bytes);
		h->big = big, h->big_bytes = bytes;
		h->inval = big, h->follow = big + total, h->cap = total;
		arr = follow ? h->follow : h->inval;
	}
	arr[(*n)++] = (struct pc_hit){ .key = it->key, .start = it->start, .end = it->end, .reason = reason,
				       .export = it->export, .xgen = it->xgen, .jt = it->jt };
}

/* Every entry overlapping [a, b), from the last (in (start, key) order) to
 * the first: each found by a descent from the root, so the ones invalidated
 * can go at once. */
static void scan(const struct pc_event *ev, uintptr_t a, uintptr_t b, int follow, struct pc_hits *h)
{
	uintptr_t us = b;
	uint64_t uk = 0; /* keys start at 1: before (b, 0) is every entry starting below b */
	struct path p;
	while (last_over(root, us, uk, a, &p, 0)) {
		struct item it;
		int act;
		at_path(&p, &it);
		us = it.start, uk = it.key;
		act = pc_policy(ev, it.start, it.end, it.flags & USER_FLAGS, follow);
		if (act == PC_ACT_KEEP)
			continue;
		h->published |= it.export != 0;
		if (act == PC_ACT_INVALIDATE) {
			push(h, 0, &it, ev->reason);
			/* exit and exec: one event says "everything", below */
			if (ev->reason != PINCOH_REASON_EXIT)
				pc_emit(PC_R_INVAL, (uint16_t)ev->reason, h->call, it.export ? PC_EV_EXPORT : 0, it.key, 0, 0);
			remove_locked(&it);
		} else {
			push(h, 1, &it, ev->reason);
			pc_emit(PC_R_MOVING, (uint16_t)ev->reason, h->call, it.export ? PC_EV_EXPORT : 0, it.key, 0, 0);
		}
	}
}

void pc_table_apply(const struct pc_event *ev, int follow, uint32_t call, struct pc_hits *h)
{
	h->inval = h->local;
	h->follow = h->local + 16;
	h->cap = 16;
	h->n_inval = h->n_follow = 0;
	h->big = NULL;
	h->big_bytes = 0;
	h->call = call;
	h->published = 0;
	pthread_mutex_lock(&mu);
	if (nodes) {
		apply_room = atomic_load_explicit(&count, memory_order_relaxed);
		scan(ev, ev->start, ev->end, follow, h);
		if (ev->dest_end)
			scan(ev, ev->dest, ev->dest_end, follow, h);
		if (ev->reason == PINCOH_REASON_EXIT)
			pc_emit(PC_R_INVAL, PINCOH_REASON_EXIT, call, 0, 0, 0, 0);
	}
	pthread_mutex_unlock(&mu);
}

void pc_table_move(const struct pc_hits *h, uintptr_t old_start, uintptr_t new_start)
{
	pthread_mutex_lock(&mu);
	for (size_t k = 0; k < h->n_follow; k++) {
		const struct pc_hit *f = &h->follow[k];
		struct slot *s = slots ? hash_find(f->key) : NULL;
		struct item it;
		if (!s)
			continue; /* deregistered meanwhile */
		/* out and back in, in one write: readers never see it missing */
		write_begin();
		if (tree_remove(s->start, f->key, &it) < 0) {
			write_end();
			continue;
		}
		pf_remove(it.start, it.end);
		it.start = f->start - old_start + new_start;
		it.end = f->end - old_start + new_start;
		tree_insert(&it);
		pf_add(it.start, it.end);
		publish_root();
		write_end();
		s->start = it.start;
		pc_emit(PC_R_MOVED, 0, h->call, 0, f->key, it.start, 0);
	}
	pthread_mutex_unlock(&mu);
}

void pc_hits_release(struct pc_hits *h)
{
	if (h->big)
		syscall(SYS_munmap, h->big, h->big_bytes);
	h->big = NULL;
}

#ifdef PC_TABLE_TEST
#include "table-check.h"
#endif
