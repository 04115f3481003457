#include "core/platform.h"
#include "kafka/server.h"
#include "core/lathist.h"
#include "core/listener.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "kafka/broker.h"
#include "kafka/dispatch.h"
#include "kafka/kreq.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Read staging buffer: small requests are copied out of it whole; a frame
 * larger than what is staged gets its own buffer that we read straight into. */
#define STAGE_SIZE (64 * 1024)
/* Requests in flight per connection before we stop reading from it (Kafka
 * mutes a connection after one; clients pipeline up to 5). */
#define MAX_QUEUED_PER_CONN 64

enum { RS_RUNNING, RS_PENDING, RS_DONE, RS_NORESP };
enum { API_KEY_PRODUCE = 0 };

struct kconn {
	struct kloop *kl;
	struct loop_io io;
	char peer[64];
	char host[INET_ADDRSTRLEN];
	struct kconn *next, *prev;

	uint8_t stage[STAGE_SIZE];
	size_t stage_len;
	uint8_t *big;      /* frame being read directly (size > what fits staged) */
	size_t big_len, big_got;

	struct kreq *q_head, *q_tail;
	int nq;
	/* Output of the head response. */
	uint8_t hdr[8];
	size_t sent;       /* bytes of the head response already written */
	bool closing;
	bool read_paused;
	bool flush_wanted;
	int64_t rx_ns; /* request timing: kernel receive time of the last bytes read */
};

const char *kconn_peer_host(const struct kconn *c)
{
	return c->host;
}

struct kloop {
	struct kserver *srv;
	struct loop *loop;
	pthread_t thread;
	int idx;
	struct kconn *conns;
	int nconns;
	struct wbuf scratch;
	struct kreq *pending;          /* requests waiting in poll */
	int npending_local;
	int kick_posted;               /* atomic: a kick is already queued */
	struct loop_timer deadline;
	struct loop_io listen_io;      /* only loop 0 */
	/* Set by close_all_cb: the loop takes no more connections. A handoff
	 * that arrives later (accepted on loop 0 while this loop was already
	 * closing) is refused; it may even run inside loop_free. */
	bool closed;
	/* silt.debug.request.timing: produce requests' time in the server,
	 * one log line per burst (at most every TIMING_WINDOW_MS); NULL if off. */
	struct lathist *timing;
	int64_t timing_start_ms, timing_last_ms; /* monotonic */
	struct loop_timer timing_timer;
};

#define TIMING_WINDOW_MS 10000
#define TIMING_IDLE_MS 1000

struct kserver {
	int lfd;
	int port;
	int nloops;
	struct kloop *loops;
	int next_loop;
	int nconns;                    /* atomic */
	int64_t inflight;              /* atomic: request bytes held */
	bool sched_batch;              /* loops run under SCHED_BATCH */
};

static struct kserver *g_srv;

static void conn_close(struct kconn *c, const char *why);
static void conn_flush(struct kconn *c);
static void conn_on_io(struct loop_io *io, int events);
static void pending_arm(struct kloop *kl);

struct wbuf *kloop_scratch(struct kloop *kl)
{
	/* Handlers driven without a server (unit tests, fuzzers) get a
	 * per-thread buffer with the same cap. */
	static _Thread_local struct wbuf tls;
	if (kl)
		return &kl->scratch;
	if (!tls.max)
		wbuf_init(&tls, 0, 256u << 20);
	return &tls;
}

/* ---- request timing (silt.debug.request.timing) ------------------------ */

/* With the option on, each connection asks the kernel for the receive time
 * of the bytes it reads (SO_TIMESTAMPNS), and each produce request's time
 * from there to the moment its whole response was handed to the socket goes
 * into the loop's histogram: wakeup delay, queueing behind other requests,
 * the append and the response write, i.e. the server's share of a client's
 * latency. Off by default: it costs a control message per read. */

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void timing_report(struct kloop *kl)
{
	struct lathist *h = kl->timing;
	if (!h || h->count == 0)
		return;
	double secs = (double)(kl->timing_last_ms - kl->timing_start_ms) / 1000.0;
	log_info("kafka",
		 "loop %d: %" PRIu64 " produce requests in %.1f s; receive to response sent: p50 %" PRId64
		 " us, p99 %" PRId64 " us, p99.9 %" PRId64 " us, max %" PRId64 " us; %" PRIu64
		 " over 1 ms, %" PRIu64 " over 2 ms",
		 kl->idx, h->count, secs, lathist_quantile(h, 0.5), lathist_quantile(h, 0.99),
		 lathist_quantile(h, 0.999), h->max_us, h->over_1ms, h->over_2ms);
	lathist_reset(h);
}

static void timing_timer_cb(struct loop_timer *t)
{
	struct kloop *kl = t->data;
	int64_t now = mono_ms();
	if (now - kl->timing_start_ms >= TIMING_WINDOW_MS || now - kl->timing_last_ms >= TIMING_IDLE_MS)
		timing_report(kl);
	else
		loop_timer_start(kl->loop, &kl->timing_timer, TIMING_IDLE_MS);
}

static void timing_note(struct kloop *kl, int64_t rx_ns)
{
	if (rx_ns == 0)
		return;
	int64_t now = mono_ms();
	if (kl->timing->count == 0) {
		kl->timing_start_ms = now;
		loop_timer_start(kl->loop, &kl->timing_timer, TIMING_IDLE_MS);
	}
	kl->timing_last_ms = now;
	lathist_add(kl->timing, (realtime_ns() - rx_ns) / 1000);
}

/* read(), or with request timing recvmsg() that also takes the receive
 * time of the bytes. */
static ssize_t conn_recv(struct kconn *c, void *buf, size_t len)
{
	if (!c->kl->timing)
		return read(c->io.fd, buf, len);
	struct iovec v = { buf, len };
	union {
		char b[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} cbuf;
	struct msghdr mh = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	ssize_t n = recvmsg(c->io.fd, &mh, 0);
	if (n <= 0)
		return n;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
			struct timespec ts;
			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			c->rx_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		}
	}
	return n;
}

/* ---- requests ---------------------------------------------------------- */

void kreq_add_file(struct kreq *req, const struct seglog_read *rd)
{
	if (req->nfiles == req->capfiles) {
		req->capfiles = req->capfiles ? req->capfiles * 2 : 8;
		req->files = xrealloc(req->files, sizeof(*req->files) * (size_t)req->capfiles);
	}
	req->files[req->nfiles].at = req->out.len;
	req->files[req->nfiles].rd = *rd;
	req->nfiles++;
}

size_t kreq_body_len(const struct kreq *req)
{
	size_t n = req->out.len;
	for (int i = 0; i < req->nfiles; i++)
		n += req->files[i].rd.len;
	return n;
}

static void kreq_free(struct kreq *req)
{
	for (int i = 0; i < req->nfiles; i++)
		if (req->files[i].rd.seg)
			seglog_seg_unref(req->files[i].rd.seg);
	free(req->files);
	wbuf_destroy(&req->out);
	if (req->frame) {
		__atomic_sub_fetch(&g_srv->inflight, (int64_t)req->frame_len, __ATOMIC_RELAXED);
		free(req->frame);
	}
	free(req);
}

static void pending_add(struct kloop *kl, struct kreq *req)
{
	req->pprev = NULL;
	req->pnext = kl->pending;
	if (kl->pending)
		kl->pending->pprev = req;
	kl->pending = req;
	__atomic_add_fetch(&kl->npending_local, 1, __ATOMIC_RELAXED);
}

static void pending_del(struct kloop *kl, struct kreq *req)
{
	if (req->pprev)
		req->pprev->pnext = req->pnext;
	else
		kl->pending = req->pnext;
	if (req->pnext)
		req->pnext->pprev = req->pprev;
	req->pnext = req->pprev = NULL;
	__atomic_sub_fetch(&kl->npending_local, 1, __ATOMIC_RELAXED);
}

/* Called when a handler or a poll finished: queues output, or closes. */
static void req_finished(struct kreq *req, int rc)
{
	struct kconn *c = req->conn;
	if (rc == KH_CLOSE) {
		log_warn("kafka", "%s: malformed %s v%d request (correlation id %d), closing",
			 c->peer, kafka_api_name(req->api_key), req->api_version, req->correlation_id);
		c->closing = true;
		req->state = RS_NORESP;
		return;
	}
	if (req->out.err) {
		log_error("kafka", "%s: %s response over its size cap, closing", c->peer,
			  kafka_api_name(req->api_key));
		c->closing = true;
		req->state = RS_NORESP;
		return;
	}
	req->state = rc == KH_NORESP ? RS_NORESP : RS_DONE;
}

static void run_handler(struct kconn *c, struct kreq *req)
{
	int rc = kafka_dispatch(req);
	if (rc == KH_PENDING) {
		req->state = RS_PENDING;
		pending_add(c->kl, req);
		pending_arm(c->kl);
		return;
	}
	req_finished(req, rc);
}

/* Polls every pending request of this loop. Connections are flushed only
 * after the walk, because flushing may close a connection and free other
 * requests of it that are still on the pending list. */
static void pending_poll_all(struct kloop *kl)
{
	int64_t now = mono_ms();
	struct kreq *req = kl->pending;
	bool any = false;
	while (req) {
		struct kreq *next = req->pnext;
		bool expired = req->deadline_ms && now >= req->deadline_ms;
		int rc = req->poll(req, expired);
		if (rc != KH_PENDING || expired) {
			if (rc == KH_PENDING) {
				/* A poll must answer once expired; treat a refusal as a
				 * handler bug rather than hang the client. */
				log_error("kafka", "%s: pending %s did not answer at its deadline",
					  req->conn->peer, kafka_api_name(req->api_key));
				rc = KH_CLOSE;
			}
			pending_del(kl, req);
			req_finished(req, rc);
			req->conn->flush_wanted = true;
			any = true;
		}
		req = next;
	}
	if (any) {
		struct kconn *c = kl->conns;
		while (c) {
			struct kconn *cnext = c->next;
			if (c->flush_wanted) {
				c->flush_wanted = false;
				conn_flush(c);
			}
			c = cnext;
		}
	}
	pending_arm(kl);
}

static void pending_timer_cb(struct loop_timer *t)
{
	pending_poll_all(t->data);
}

static void pending_arm(struct kloop *kl)
{
	int64_t min = INT64_MAX;
	for (struct kreq *r = kl->pending; r; r = r->pnext)
		if (r->deadline_ms && r->deadline_ms < min)
			min = r->deadline_ms;
	if (min == INT64_MAX) {
		loop_timer_stop(kl->loop, &kl->deadline);
		return;
	}
	int64_t d = min - mono_ms();
	loop_timer_start(kl->loop, &kl->deadline, d < 0 ? 0 : d);
}

static void kick_cb(void *arg)
{
	struct kloop *kl = arg;
	__atomic_store_n(&kl->kick_posted, 0, __ATOMIC_RELEASE);
	if (kl->pending)
		pending_poll_all(kl);
}

void kafka_kick(void)
{
	struct kserver *s = __atomic_load_n(&g_srv, __ATOMIC_ACQUIRE);
	if (!s)
		return;
	for (int i = 0; i < s->nloops; i++) {
		struct kloop *kl = &s->loops[i];
		if (__atomic_load_n(&kl->npending_local, __ATOMIC_RELAXED) == 0)
			continue;
		if (__atomic_exchange_n(&kl->kick_posted, 1, __ATOMIC_ACQ_REL) == 0)
			loop_post(kl->loop, kick_cb, kl);
	}
}

/* ---- reading ----------------------------------------------------------- */

static void conn_enqueue(struct kconn *c, uint8_t *frame, size_t len)
{
	struct kreq *req = xcalloc(1, sizeof(*req));
	req->conn = c;
	req->kl = c->kl;
	req->frame = frame;
	req->frame_len = len;
	req->rx_ns = c->rx_ns;
	req->state = RS_RUNNING;
	wbuf_init(&req->out, 0, (size_t)kbroker_conf()->socket_request_max_bytes + (64u << 20));
	if (c->q_tail)
		c->q_tail->next = req;
	else
		c->q_head = req;
	c->q_tail = req;
	c->nq++;
	if (kafka_parse_header(req) != 0) {
		log_warn("kafka", "%s: undecodable request header (%zu bytes), closing", c->peer, len);
		c->closing = true;
		req->state = RS_NORESP;
		return;
	}
	run_handler(c, req);
}

static bool admit(struct kconn *c, size_t len)
{
	uint64_t cap = kbroker_conf()->max_inflight_bytes;
	int64_t now = __atomic_add_fetch(&g_srv->inflight, (int64_t)len, __ATOMIC_RELAXED);
	/* One frame is always admitted on an idle connection so a single huge
	 * request cannot deadlock; beyond that we back off. */
	if ((uint64_t)now > cap && c->nq > 0) {
		__atomic_sub_fetch(&g_srv->inflight, (int64_t)len, __ATOMIC_RELAXED);
		return false;
	}
	return true;
}

/* Takes whole frames out of the staging buffer. Returns false if the
 * connection must close. */
static bool conn_parse(struct kconn *c)
{
	uint32_t maxb = kbroker_conf()->socket_request_max_bytes;
	size_t off = 0;
	while (!c->closing && c->nq < MAX_QUEUED_PER_CONN && c->stage_len - off >= 4) {
		uint32_t size = (uint32_t)c->stage[off] << 24 | (uint32_t)c->stage[off + 1] << 16 |
				(uint32_t)c->stage[off + 2] << 8 | c->stage[off + 3];
		if (size > maxb || size < 8) {
			log_warn("kafka", "%s: request size %u outside [8, socket.request.max.bytes=%u], closing",
				 c->peer, size, maxb);
			return false;
		}
		if (!admit(c, size)) {
			c->read_paused = true;
			break;
		}
		uint8_t *frame = xmalloc(size);
		size_t have = c->stage_len - off - 4;
		if (have >= size) {
			memcpy(frame, c->stage + off + 4, size);
			off += 4 + size;
			conn_enqueue(c, frame, size);
			continue;
		}
		memcpy(frame, c->stage + off + 4, have);
		off = c->stage_len;
		c->big = frame;
		c->big_len = size;
		c->big_got = have;
		break;
	}
	if (off > 0) {
		memmove(c->stage, c->stage + off, c->stage_len - off);
		c->stage_len -= off;
	}
	return true;
}

static void conn_read(struct kconn *c)
{
	for (int rounds = 0; rounds < 16 && !c->closing; rounds++) {
		if (c->nq >= MAX_QUEUED_PER_CONN || c->read_paused) {
			c->read_paused = true;
			return;
		}
		ssize_t n;
		if (c->big) {
			n = conn_recv(c, c->big + c->big_got, c->big_len - c->big_got);
			if (n > 0) {
				c->big_got += (size_t)n;
				if (c->big_got == c->big_len) {
					uint8_t *f = c->big;
					c->big = NULL;
					conn_enqueue(c, f, c->big_len);
				}
				continue;
			}
		} else {
			size_t room = sizeof(c->stage) - c->stage_len;
			n = conn_recv(c, c->stage + c->stage_len, room);
			if (n > 0) {
				c->stage_len += (size_t)n;
				if (!conn_parse(c)) {
					conn_close(c, NULL);
					return;
				}
				/* A short read emptied the socket: stop here rather
				 * than pay one more read for EAGAIN on every request.
				 * The watcher is level-triggered, so bytes (or EOF)
				 * that arrive from now on wake the loop again. Only
				 * when every whole frame was taken, though: frames
				 * left staged by a full queue need the pause below
				 * so that conn_flush resumes them. */
				if ((size_t)n < room && c->nq < MAX_QUEUED_PER_CONN && !c->read_paused)
					return;
				continue;
			}
		}
		if (n == 0) {
			conn_close(c, c->big || c->stage_len ? "closed mid-request" : NULL);
			return;
		}
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_close(c, strerror(errno));
		return;
	}
}

/* ---- writing ----------------------------------------------------------- */

/* Writes as much of the head response as the socket takes. Returns 1 when
 * the head is fully sent, 0 on EAGAIN, -1 on error. */
static int write_head(struct kconn *c, struct kreq *req)
{
	size_t body = kreq_body_len(req);
	size_t total = 8 + body;
	if (c->sent == 0) {
		uint32_t size = (uint32_t)(4 + body);
		c->hdr[0] = (uint8_t)(size >> 24);
		c->hdr[1] = (uint8_t)(size >> 16);
		c->hdr[2] = (uint8_t)(size >> 8);
		c->hdr[3] = (uint8_t)size;
		uint32_t cid = (uint32_t)req->correlation_id;
		c->hdr[4] = (uint8_t)(cid >> 24);
		c->hdr[5] = (uint8_t)(cid >> 16);
		c->hdr[6] = (uint8_t)(cid >> 8);
		c->hdr[7] = (uint8_t)cid;
	}
	while (c->sent < total) {
		/* Locate c->sent within [hdr][mem0][file0][mem1][file1]...[memN]. */
		struct iovec iov[32];
		int niov = 0;
		size_t pos = 8, mem_at = 0;
		size_t s = c->sent;
		if (s < 8)
			iov[niov++] = (struct iovec){ c->hdr + s, 8 - s };
		int fi = 0;
		bool file_next = false;
		for (;;) {
			size_t mem_end = fi < req->nfiles ? req->files[fi].at : req->out.len;
			size_t mlen = mem_end - mem_at;
			if (s < pos + mlen) {
				size_t skip = s > pos ? s - pos : 0;
				if (niov < (int)SILT_ARRAY_LEN(iov) && mlen > skip)
					iov[niov++] = (struct iovec){ req->out.p + mem_at + skip, mlen - skip };
			}
			pos += mlen;
			mem_at = mem_end;
			if (fi >= req->nfiles)
				break;
			if (s < pos + req->files[fi].rd.len) {
				file_next = true;
				break;
			}
			pos += req->files[fi].rd.len;
			fi++;
		}
		ssize_t n;
		if (niov > 0) {
			n = writev(c->io.fd, iov, niov);
		} else if (file_next) {
			struct kreq_file *f = &req->files[fi];
			off_t fpos = (off_t)(f->rd.pos + (s - pos));
			size_t left = f->rd.len - (s - pos);
			n = sendfile(c->io.fd, f->rd.fd, &fpos, SILT_MIN(left, (size_t)1 << 30));
			if (n == 0) {
				log_error("kafka", "%s: segment file shorter than indexed, closing", c->peer);
				return -1;
			}
		} else {
			break;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -1;
		}
		c->sent += (size_t)n;
	}
	return 1;
}

/* Sends every finished response at the head of the queue, in order. A
 * connection marked closing (a malformed request) still gets the answers to
 * the requests before it, then closes at the first one still pending --
 * which is cancelled -- rather than keep a socket it no longer reads. */
static void conn_flush(struct kconn *c)
{
	while (c->q_head && (c->q_head->state == RS_DONE || c->q_head->state == RS_NORESP)) {
		struct kreq *req = c->q_head;
		if (req->state == RS_DONE) {
			int rc = write_head(c, req);
			if (rc < 0) {
				conn_close(c, strerror(errno));
				return;
			}
			if (rc == 0) {
				int want = c->closing || c->read_paused ? 0 : LOOP_READ;
				loop_io_mod(c->kl->loop, &c->io, want | LOOP_WRITE);
				return;
			}
			if (c->kl->timing && req->api_key == API_KEY_PRODUCE)
				timing_note(c->kl, req->rx_ns);
		}
		c->sent = 0;
		c->q_head = req->next;
		if (!c->q_head)
			c->q_tail = NULL;
		c->nq--;
		kreq_free(req);
	}
	if (c->closing) {
		conn_close(c, NULL);
		return;
	}
	if (c->read_paused && c->nq < MAX_QUEUED_PER_CONN / 2) {
		c->read_paused = false;
		/* Frames may already be staged; parse them before reading more. */
		if (!conn_parse(c)) {
			conn_close(c, NULL);
			return;
		}
		conn_read(c);
		if (c->io.fd < 0)
			return;
		if (c->q_head && (c->q_head->state == RS_DONE || c->q_head->state == RS_NORESP)) {
			conn_flush(c);
			return;
		}
	}
	loop_io_mod(c->kl->loop, &c->io, c->read_paused ? 0 : LOOP_READ);
}

static void conn_on_io(struct loop_io *io, int events)
{
	struct kconn *c = io->data;
	if (events & LOOP_WRITE) {
		conn_flush(c);
		if (c->io.fd < 0)
			return;
	}
	if ((events & LOOP_READ) && !c->closing) {
		conn_read(c);
		if (c->io.fd < 0)
			return;
		conn_flush(c);
	}
}

static void conn_close(struct kconn *c, const char *why)
{
	struct kloop *kl = c->kl;
	if (c->io.fd < 0)
		return;
	if (why)
		log_info("kafka", "%s: connection closed: %s", c->peer, why);
	else
		log_debug("kafka", "%s: connection closed", c->peer);
	loop_io_del(kl->loop, &c->io);
	close(c->io.fd);
	c->io.fd = -1;
	struct kreq *req = c->q_head;
	while (req) {
		struct kreq *next = req->next;
		if (req->state == RS_PENDING) {
			pending_del(kl, req);
			if (req->cancel)
				req->cancel(req);
		}
		kreq_free(req);
		req = next;
	}
	c->q_head = c->q_tail = NULL;
	if (c->big) {
		__atomic_sub_fetch(&g_srv->inflight, (int64_t)c->big_len, __ATOMIC_RELAXED);
		free(c->big);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		kl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	kl->nconns--;
	__atomic_sub_fetch(&kl->srv->nconns, 1, __ATOMIC_RELAXED);
	/* The loop may still hold this io in the current epoll batch only if
	 * it was this connection's own event, which is the caller; free after
	 * the callback returns by deferring through the post queue. */
	loop_post(kl->loop, free, c);
}

/* ---- accepting --------------------------------------------------------- */

struct handoff {
	struct kloop *kl;
	int fd;
	char peer[64];
	char host[INET_ADDRSTRLEN];
};

static void adopt_cb(void *arg)
{
	struct handoff *h = arg;
	struct kloop *kl = h->kl;
	if (kl->closed) {
		log_debug("kafka", "%s: closed, the server is stopping", h->peer);
		close(h->fd);
		__atomic_sub_fetch(&kl->srv->nconns, 1, __ATOMIC_RELAXED);
		free(h);
		return;
	}
	struct kconn *c = xcalloc(1, sizeof(*c));
	c->kl = kl;
	c->io.fd = h->fd;
	c->io.cb = conn_on_io;
	if (kl->timing) {
		int one = 1;
		if (setsockopt(h->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0)
			log_warn("kafka", "%s: SO_TIMESTAMPNS: %s; no request timing for it", h->peer,
				 strerror(errno));
	}
	c->io.data = c;
	snprintf(c->peer, sizeof(c->peer), "%s", h->peer);
	snprintf(c->host, sizeof(c->host), "%s", h->host);
	free(h);
	c->next = kl->conns;
	if (kl->conns)
		kl->conns->prev = c;
	kl->conns = c;
	kl->nconns++;
	if (loop_io_add(kl->loop, &c->io, LOOP_READ) != 0) {
		conn_close(c, "epoll registration failed");
		return;
	}
	log_debug("kafka", "%s: connected (loop %d)", c->peer, kl->idx);
	conn_read(c);
	if (c->io.fd >= 0)
		conn_flush(c);
}

static void accept_cb(struct loop_io *io, int events)
{
	struct kserver *s = io->data;
	for (int i = 0; i < 64; i++) {
		char peer[64], ip[INET_ADDRSTRLEN];
		int fd = listener_accept(s->lfd, peer, sizeof(peer), ip);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("kafka", "accept: %s", strerror(errno));
			return;
		}
		int limit = kbroker_conf()->max_connections;
		if (__atomic_add_fetch(&s->nconns, 1, __ATOMIC_RELAXED) > limit) {
			__atomic_sub_fetch(&s->nconns, 1, __ATOMIC_RELAXED);
			log_warn("kafka", "%s: refused, max.connections=%d reached", peer, limit);
			close(fd);
			continue;
		}
		struct handoff *h = xmalloc(sizeof(*h));
		h->kl = &s->loops[s->next_loop];
		s->next_loop = (s->next_loop + 1) % s->nloops;
		h->fd = fd;
		memcpy(h->peer, peer, sizeof(peer));
		memcpy(h->host, ip, sizeof(ip));
		loop_post(h->kl->loop, adopt_cb, h);
	}
}

static void *loop_thread(void *arg)
{
	struct kloop *kl = arg;
	char name[16];
	snprintf(name, sizeof(name), "silt-loop-%d", kl->idx);
	pthread_setname_np(pthread_self(), name);
	if (kl->srv->sched_batch) {
		int rc = thread_sched_batch();
		if (rc < 0)
			log_warn("kafka", "%s: SCHED_BATCH refused: %s", name, strerror(-rc));
	}
	loop_run(kl->loop);
	return NULL;
}

int kserver_start(const char *host, int port, int nthreads, bool sched_batch, struct kserver **out)
{
	int bound = 0;
	int fd = listener_open(host, port, &bound);
	if (fd < 0)
		return fd;
	struct kserver *s = xcalloc(1, sizeof(*s));
	s->lfd = fd;
	s->port = bound;
	s->nloops = nthreads < 1 ? 1 : nthreads;
	s->sched_batch = sched_batch;
	s->loops = xcalloc((size_t)s->nloops, sizeof(*s->loops));
	g_srv = s;
	for (int i = 0; i < s->nloops; i++) {
		struct kloop *kl = &s->loops[i];
		kl->srv = s;
		kl->idx = i;
		kl->loop = loop_new();
		wbuf_init(&kl->scratch, 1 << 20, 256u << 20);
		loop_timer_init(&kl->deadline, pending_timer_cb, kl);
		loop_timer_init(&kl->timing_timer, timing_timer_cb, kl);
		if (kbroker_conf()->debug_request_timing)
			kl->timing = xcalloc(1, sizeof(*kl->timing));
	}
	struct kloop *l0 = &s->loops[0];
	l0->listen_io.fd = fd;
	l0->listen_io.cb = accept_cb;
	l0->listen_io.data = s;
	loop_io_add(l0->loop, &l0->listen_io, LOOP_READ);
	for (int i = 0; i < s->nloops; i++)
		pthread_create(&s->loops[i].thread, NULL, loop_thread, &s->loops[i]);
	*out = s;
	return 0;
}

int kserver_port(const struct kserver *s)
{
	return s->port;
}

struct loop *kserver_loop(struct kserver *s, int i)
{
	return i >= 0 && i < s->nloops ? s->loops[i].loop : NULL;
}

/* Shutdown, on each loop. Loop 0 stops accepting first; a connection it
 * accepted just before may already be on its way to a loop that has closed
 * (the loops close in no particular order), and adopt_cb refuses it there
 * instead of serving it on a stopped loop. */
static void close_all_cb(void *arg)
{
	struct kloop *kl = arg;
	kl->closed = true;
	if (kl->idx == 0)
		loop_io_del(kl->loop, &kl->listen_io);
	while (kl->conns)
		conn_close(kl->conns, NULL);
	timing_report(kl);
	loop_stop(kl->loop);
}

void kserver_stop(struct kserver *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nloops; i++)
		loop_post(s->loops[i].loop, close_all_cb, &s->loops[i]);
	for (int i = 0; i < s->nloops; i++)
		pthread_join(s->loops[i].thread, NULL);
	close(s->lfd);
	s->lfd = -1;
}

void kserver_free(struct kserver *s)
{
	if (!s)
		return;
	__atomic_store_n(&g_srv, NULL, __ATOMIC_RELEASE);
	/* Runs what is still posted: kick_cb (nothing pending any more), the
	 * deferred frees of closed connections, refused handoffs. */
	for (int i = 0; i < s->nloops; i++) {
		loop_free(s->loops[i].loop);
		wbuf_destroy(&s->loops[i].scratch);
		free(s->loops[i].timing);
	}
	free(s->loops);
	free(s);
}
