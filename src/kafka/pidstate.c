/* pidstate.c - idempotent producer state; see pidstate.h for the rules.
 *
 * A chained hash table keyed by producerId plus an intrusive LRU list
 * (most recent at the head) that picks the producer to evict when the table
 * is full. Each entry keeps its last batches in a small ring. */
#include "core/platform.h"
#include "kafka/pidstate.h"

#include "kafka/errors.h"

struct pid_batch {
	int32_t first_seq, last_seq;
	int64_t first_offset, last_offset;
};

struct pid_entry {
	int64_t pid;
	struct pid_entry *hnext;
	struct pid_entry *lru_prev, *lru_next;
	int16_t epoch;
	uint8_t nbatches; /* valid entries in b */
	uint8_t newest;   /* index of the newest batch in b */
	struct pid_batch b[PIDSTATE_MAX_BATCHES];
};

struct pidstate {
	struct pid_entry **buckets;
	uint32_t nbuckets; /* power of two */
	uint32_t count;
	uint32_t max_pids;
	struct pid_entry *lru_head, *lru_tail;
};

static uint32_t pid_hash(int64_t pid, uint32_t nbuckets)
{
	/* Producer ids are handed out sequentially: spread them. */
	uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15ull;
	return (uint32_t)(h >> 32) & (nbuckets - 1);
}

struct pidstate *pidstate_new(void)
{
	struct pidstate *ps = xcalloc(1, sizeof(*ps));
	ps->nbuckets = 64;
	ps->buckets = xcalloc(ps->nbuckets, sizeof(*ps->buckets));
	ps->max_pids = PIDSTATE_DEFAULT_MAX_PIDS;
	return ps;
}

void pidstate_free(struct pidstate *ps)
{
	if (!ps)
		return;
	struct pid_entry *e = ps->lru_head;
	while (e) {
		struct pid_entry *next = e->lru_next;
		free(e);
		e = next;
	}
	free(ps->buckets);
	free(ps);
}

uint32_t pidstate_count(const struct pidstate *ps)
{
	return ps->count;
}

static struct pid_entry *find(const struct pidstate *ps, int64_t pid)
{
	for (struct pid_entry *e = ps->buckets[pid_hash(pid, ps->nbuckets)]; e; e = e->hnext)
		if (e->pid == pid)
			return e;
	return NULL;
}

static void lru_unlink(struct pidstate *ps, struct pid_entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		ps->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		ps->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(struct pidstate *ps, struct pid_entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = ps->lru_head;
	if (ps->lru_head)
		ps->lru_head->lru_prev = e;
	ps->lru_head = e;
	if (!ps->lru_tail)
		ps->lru_tail = e;
}

static void touch(struct pidstate *ps, struct pid_entry *e)
{
	if (ps->lru_head == e)
		return;
	lru_unlink(ps, e);
	lru_push_head(ps, e);
}

static void remove_entry(struct pidstate *ps, struct pid_entry *e)
{
	struct pid_entry **pp = &ps->buckets[pid_hash(e->pid, ps->nbuckets)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(ps, e);
	ps->count--;
	free(e);
}

static void evict_to(struct pidstate *ps, uint32_t max)
{
	while (ps->count > max && ps->lru_tail)
		remove_entry(ps, ps->lru_tail);
}

void pidstate_set_max_pids(struct pidstate *ps, uint32_t max_pids)
{
	ps->max_pids = max_pids ? max_pids : 1;
	evict_to(ps, ps->max_pids);
}

static void grow(struct pidstate *ps)
{
	uint32_t nb = ps->nbuckets * 2;
	struct pid_entry **b = xcalloc(nb, sizeof(*b));
	for (uint32_t i = 0; i < ps->nbuckets; i++) {
		struct pid_entry *e = ps->buckets[i];
		while (e) {
			struct pid_entry *next = e->hnext;
			uint32_t h = pid_hash(e->pid, nb);
			e->hnext = b[h];
			b[h] = e;
			e = next;
		}
	}
	free(ps->buckets);
	ps->buckets = b;
	ps->nbuckets = nb;
}

/* Sequence arithmetic as Kafka does it: sequences run 0..INT32_MAX and wrap
 * to 0. */
static int32_t seq_add(int32_t seq, int32_t n)
{
	if (seq > INT32_MAX - n)
		return n - (INT32_MAX - seq) - 1;
	return seq + n;
}

int pidstate_check(struct pidstate *ps, int64_t pid, int16_t epoch, int32_t base_seq, int32_t count,
		   int64_t *dup_base_offset)
{
	*dup_base_offset = -1;
	if (pid < 0)
		return KERR_NONE;
	if (count < 1 || base_seq < 0)
		return KERR_INVALID_RECORD;
	struct pid_entry *e = find(ps, pid);
	if (!e)
		return KERR_NONE; /* see pidstate.h: any sequence */
	touch(ps, e);
	if (epoch < e->epoch)
		return KERR_INVALID_PRODUCER_EPOCH;
	if (epoch > e->epoch)
		return base_seq == 0 ? KERR_NONE : KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
	int32_t last_seq = seq_add(base_seq, count - 1);
	for (int i = 0; i < e->nbatches; i++) {
		const struct pid_batch *b = &e->b[i];
		if (b->first_seq == base_seq && b->last_seq == last_seq) {
			*dup_base_offset = b->first_offset;
			return KERR_NONE;
		}
	}
	if (e->nbatches == 0 || base_seq == seq_add(e->b[e->newest].last_seq, 1))
		return KERR_NONE;
	return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
}

void pidstate_record(struct pidstate *ps, int64_t pid, int16_t epoch, int32_t base_seq, int32_t count,
		     int64_t base_offset)
{
	if (pid < 0 || count < 1)
		return;
	struct pid_entry *e = find(ps, pid);
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		e->pid = pid;
		e->epoch = epoch;
		if (ps->count >= ps->nbuckets)
			grow(ps);
		uint32_t h = pid_hash(pid, ps->nbuckets);
		e->hnext = ps->buckets[h];
		ps->buckets[h] = e;
		lru_push_head(ps, e);
		ps->count++;
	} else {
		touch(ps, e);
	}
	if (e->epoch != epoch) {
		e->epoch = epoch;
		e->nbatches = 0;
	}
	uint8_t slot = e->nbatches == 0 ? 0 : (uint8_t)((e->newest + 1) % PIDSTATE_MAX_BATCHES);
	e->b[slot] = (struct pid_batch){
		.first_seq = base_seq,
		.last_seq = seq_add(base_seq < 0 ? 0 : base_seq, count - 1),
		.first_offset = base_offset,
		.last_offset = base_offset + count - 1,
	};
	e->newest = slot;
	if (e->nbatches < PIDSTATE_MAX_BATCHES)
		e->nbatches++;
	evict_to(ps, ps->max_pids);
}

bool pidstate_lookup(const struct pidstate *ps, int64_t pid, int16_t *epoch, int32_t *last_seq,
		     int64_t *last_offset)
{
	const struct pid_entry *e = pid >= 0 ? find(ps, pid) : NULL;
	if (!e || e->nbatches == 0)
		return false;
	if (epoch)
		*epoch = e->epoch;
	if (last_seq)
		*last_seq = e->b[e->newest].last_seq;
	if (last_offset)
		*last_offset = e->b[e->newest].last_offset;
	return true;
}
