#include "core/platform.h"
#include "core/loop.h"
#include "core/util.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct post_item {
	loop_post_fn fn;
	void *arg;
	struct post_item *next;
};

struct loop {
	int epfd;
	int wakefd;
	bool stopping;
	int64_t now_ms;
	struct loop_timer **heap;
	int nheap;
	int capheap;
	pthread_mutex_t post_mu;
	struct post_item *post_head, *post_tail;
	struct loop_io wake_io;
	struct loop_hook *hooks;
};

static void heap_swap(struct loop *l, int a, int b)
{
	struct loop_timer *t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_idx = a;
	l->heap[b]->heap_idx = b;
}

static void heap_up(struct loop *l, int i)
{
	while (i > 0) {
		int p = (i - 1) / 2;
		if (l->heap[p]->deadline_ms <= l->heap[i]->deadline_ms)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void heap_down(struct loop *l, int i)
{
	for (;;) {
		int c = 2 * i + 1, m = i;
		if (c < l->nheap && l->heap[c]->deadline_ms < l->heap[m]->deadline_ms)
			m = c;
		if (c + 1 < l->nheap && l->heap[c + 1]->deadline_ms < l->heap[m]->deadline_ms)
			m = c + 1;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *data)
{
	t->deadline_ms = 0;
	t->heap_idx = -1;
	t->cb = cb;
	t->data = data;
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	int i = t->heap_idx;
	if (i < 0)
		return;
	int last = --l->nheap;
	if (i != last) {
		l->heap[i] = l->heap[last];
		l->heap[i]->heap_idx = i;
		heap_down(l, i);
		heap_up(l, i);
	}
	t->heap_idx = -1;
}

void loop_timer_start(struct loop *l, struct loop_timer *t, int64_t ms)
{
	loop_timer_stop(l, t);
	if (l->nheap == l->capheap) {
		l->capheap = l->capheap ? l->capheap * 2 : 64;
		l->heap = xrealloc(l->heap, sizeof(*l->heap) * (size_t)l->capheap);
	}
	t->deadline_ms = mono_ms() + ms;
	t->heap_idx = l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, t->heap_idx);
}

int64_t loop_now_ms(struct loop *l)
{
	return l->now_ms;
}

static void run_posted(struct loop *l)
{
	pthread_mutex_lock(&l->post_mu);
	struct post_item *it = l->post_head;
	l->post_head = l->post_tail = NULL;
	pthread_mutex_unlock(&l->post_mu);
	while (it) {
		struct post_item *next = it->next;
		it->fn(it->arg);
		free(it);
		it = next;
	}
}

void loop_hook_add(struct loop *l, struct loop_hook *h)
{
	if (h->added)
		return;
	h->next = l->hooks;
	l->hooks = h;
	h->added = true;
}

void loop_hook_del(struct loop *l, struct loop_hook *h)
{
	if (!h->added)
		return;
	for (struct loop_hook **pp = &l->hooks; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	h->added = false;
	h->next = NULL;
}

static void run_hooks(struct loop *l)
{
	struct loop_hook *h = l->hooks;
	while (h) {
		struct loop_hook *next = h->next;
		h->fn(h);
		h = next;
	}
}

static void wake_cb(struct loop_io *io, int events)
{
	(void)events;
	uint64_t v;
	ssize_t r = read(io->fd, &v, sizeof(v));
	(void)r;
}

struct loop *loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->epfd < 0 || l->wakefd < 0) {
		perror("silt: epoll/eventfd");
		abort();
	}
	pthread_mutex_init(&l->post_mu, NULL);
	l->wake_io.fd = l->wakefd;
	l->wake_io.cb = wake_cb;
	l->wake_io.data = l;
	loop_io_add(l, &l->wake_io, LOOP_READ);
	l->now_ms = mono_ms();
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	run_posted(l);
	close(l->epfd);
	close(l->wakefd);
	pthread_mutex_destroy(&l->post_mu);
	free(l->heap);
	free(l);
}

static void wake(struct loop *l)
{
	uint64_t one = 1;
	ssize_t r = write(l->wakefd, &one, sizeof(one));
	(void)r;
}

void loop_stop(struct loop *l)
{
	__atomic_store_n(&l->stopping, true, __ATOMIC_RELEASE);
	wake(l);
}

void loop_post(struct loop *l, loop_post_fn fn, void *arg)
{
	struct post_item *it = xmalloc(sizeof(*it));
	it->fn = fn;
	it->arg = arg;
	it->next = NULL;
	pthread_mutex_lock(&l->post_mu);
	bool was_empty = l->post_head == NULL;
	if (l->post_tail)
		l->post_tail->next = it;
	else
		l->post_head = it;
	l->post_tail = it;
	pthread_mutex_unlock(&l->post_mu);
	if (was_empty)
		wake(l);
}

static uint32_t to_epoll(int events)
{
	uint32_t e = 0;
	if (events & LOOP_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (events & LOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

int loop_io_add(struct loop *l, struct loop_io *io, int events)
{
	struct epoll_event ev = { .events = to_epoll(events), .data.ptr = io };
	io->events = events;
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) == 0 ? 0 : -errno;
}

int loop_io_mod(struct loop *l, struct loop_io *io, int events)
{
	if (io->events == events)
		return 0;
	struct epoll_event ev = { .events = to_epoll(events), .data.ptr = io };
	io->events = events;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) == 0 ? 0 : -errno;
}

void loop_io_del(struct loop *l, struct loop_io *io)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->events = 0;
}

void loop_run(struct loop *l)
{
	struct epoll_event evs[128];
	while (!__atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE)) {
		l->now_ms = mono_ms();
		int timeout = -1;
		if (l->nheap > 0) {
			int64_t d = l->heap[0]->deadline_ms - l->now_ms;
			timeout = d <= 0 ? 0 : (int)SILT_MIN(d, 60000);
		}
		int n = epoll_wait(l->epfd, evs, (int)SILT_ARRAY_LEN(evs), timeout);
		if (n < 0 && errno != EINTR) {
			perror("silt: epoll_wait");
			abort();
		}
		l->now_ms = mono_ms();
		while (l->nheap > 0 && l->heap[0]->deadline_ms <= l->now_ms) {
			struct loop_timer *t = l->heap[0];
			loop_timer_stop(l, t);
			t->cb(t);
		}
		for (int i = 0; i < n; i++) {
			struct loop_io *io = evs[i].data.ptr;
			int e = 0;
			if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				e |= LOOP_READ;
			if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				e |= LOOP_WRITE;
			io->cb(io, e);
		}
		if (__atomic_load_n(&l->post_head, __ATOMIC_ACQUIRE))
			run_posted(l);
		run_hooks(l);
	}
}
