/* loop.h - a small epoll event loop, one per thread.
 *
 * The loop owns nothing it watches: callers embed a `struct loop_io` or
 * `struct loop_timer` in their own objects and keep it alive while
 * registered. Only the loop's own thread may call loop_* functions, with two
 * exceptions that any thread may call: loop_post() and loop_stop().
 *
 * Timers live in a binary min-heap keyed by monotonic deadline; each loop
 * iteration runs due timers, then I/O callbacks, then posted closures, then
 * the idle hooks (work batched over the iteration), and then waits. */
#ifndef SILT_LOOP_H
#define SILT_LOOP_H

#include "core/platform.h"

#include <pthread.h>

struct loop;

enum { LOOP_READ = 1, LOOP_WRITE = 2 };

struct loop_io;
typedef void (*loop_io_cb)(struct loop_io *io, int events);

struct loop_io {
	int fd;
	int events; /* LOOP_READ | LOOP_WRITE currently registered */
	loop_io_cb cb;
	void *data;
};

struct loop_timer;
typedef void (*loop_timer_cb)(struct loop_timer *t);

struct loop_timer {
	int64_t deadline_ms; /* monotonic */
	int heap_idx;        /* -1 when not armed */
	loop_timer_cb cb;
	void *data;
};

typedef void (*loop_post_fn)(void *arg);

/* An idle hook: runs once per loop iteration, after everything the
 * iteration's events caused and before the loop waits for more. For work
 * that callbacks queue up during an iteration and that is cheaper done
 * together (e.g. hashing several uploads' bytes in one multi-lane pass).
 * The loop owns nothing: the caller embeds it and keeps it alive while
 * added. */
struct loop_hook;
typedef void (*loop_hook_fn)(struct loop_hook *h);

struct loop_hook {
	loop_hook_fn fn;
	void *data;
	struct loop_hook *next; /* private */
	bool added;             /* private */
};

struct loop *loop_new(void);
void loop_free(struct loop *l);
/* Runs until loop_stop(). */
void loop_run(struct loop *l);
/* Thread-safe: asks the loop to return from loop_run. */
void loop_stop(struct loop *l);
/* Thread-safe: runs fn(arg) on the loop's thread soon. */
void loop_post(struct loop *l, loop_post_fn fn, void *arg);

/* 0 or -errno. `events` may be 0 to register without interest. */
int loop_io_add(struct loop *l, struct loop_io *io, int events);
int loop_io_mod(struct loop *l, struct loop_io *io, int events);
void loop_io_del(struct loop *l, struct loop_io *io);

/* Loop thread only. Adding an added hook or deleting one that is not is a
 * no-op. A hook may delete itself (not others) from its fn. */
void loop_hook_add(struct loop *l, struct loop_hook *h);
void loop_hook_del(struct loop *l, struct loop_hook *h);

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *data);
/* (Re)arms t to fire once after ms milliseconds. */
void loop_timer_start(struct loop *l, struct loop_timer *t, int64_t ms);
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->heap_idx >= 0;
}

/* The loop's cached monotonic time, refreshed once per iteration. */
int64_t loop_now_ms(struct loop *l);

#endif
