#include "core/platform.h"
#include "http/server.h"
#include "core/listener.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Room for the largest head the parser accepts (request line 16 KiB + CRLF,
 * header block 64 KiB, a few leading CRLFs) and some slack. */
#define RBUF_HEAD_MAX (96 * 1024)
#define ARENA_FIRST 4096
/* Bytes read and dropped while lingering before a close. */
#define LINGER_MAX (1024 * 1024)

/* Connection states. The request state covers everything from on_head to
 * the last byte of the response; DRAIN throws away the rest of a body the
 * handler did not read, then returns to HEAD. */
enum { CS_HEAD, CS_REQ, CS_DRAIN, CS_LINGER, CS_CLOSED };
enum { RK_NONE, RK_MEM, RK_REF, RK_FILE, RK_STREAM };

struct arena_blk {
	struct arena_blk *next;
	max_align_t data[];
};

struct hloop {
	struct http_server *srv;
	struct loop *loop;
	pthread_t thread;
	int idx;
	struct http_conn *conns;
	uint64_t nreq; /* atomic: completed requests */
	time_t date_sec;
	char date[40];
	struct loop_io listen_io; /* loop 0 only */
	/* Shutdown (close_all_cb): no more connections; handoffs that arrive
	 * later are refused, even when they run inside loop_free. */
	bool closed;
	int64_t drain_until_ms; /* monotonic: stop waiting for owed answers */
};

struct http_server {
	struct http_server_conf conf;
	struct http_handler h;
	int lfd;
	int port;
	int nloops;
	struct hloop *loops;
	int next_loop;
	int nconns;       /* atomic */
	uint64_t req_seq; /* atomic */
};

struct http_conn {
	struct hloop *hl;
	struct http_server *srv;
	struct loop_io io;
	struct loop_timer timer;
	struct http_conn *next, *prev;
	char peer[48];
	int state;

	/* Input: unprocessed bytes are rbuf[rpos..rlen). */
	uint8_t *rbuf;
	size_t rcap, rpos, rlen;
	struct http_parser parser;
	int64_t head_start_ms;
	int64_t last_io_ms;
	int64_t linger_start_ms;
	size_t lingered;
	bool eof;

	/* The current request. */
	struct http_req req;
	bool req_active;   /* on_head ran, on_done not yet */
	bool app_owes;     /* the handler has not finished its answer */
	struct http_body body;
	bool body_paused;
	bool body_end_called;
	bool sent_continue;
	size_t drained;
	uint8_t *arena;    /* first block, reused */
	size_t arena_used;
	struct arena_blk *arena_extra;
	const char *path_dec;
	bool path_done;

	/* The response. */
	struct wbuf hdrs;  /* handler headers, "Name: value\r\n" lines */
	struct wbuf out;   /* bytes to write; out_off already written */
	size_t out_off;
	int rkind;
	bool responded;    /* a final response head is queued */
	bool resp_complete; /* all of the response is queued */
	bool keepalive;
	bool app_close;    /* handler asked for Connection: close */
	bool head_only;
	bool chunked_out;
	bool stream_blocked;
	int64_t stream_left; /* announced Content-Length still to write; -1 none */
	const uint8_t *ref;
	size_t ref_len, ref_off;
	int file_fd;
	off_t file_off;
	size_t file_left;
	void (*release)(void *);
	void *release_arg;
	bool write_blocked;

	bool running, rerun, free_posted;
	size_t run_body_read; /* body bytes read in this conn_run */
	bool read_short;      /* a read in this conn_run left the socket empty */
};

static void conn_run(struct http_conn *c);
static void conn_shrink(struct http_conn *c);
static void conn_close(struct http_conn *c, const char *why);

/* ---- small helpers ----------------------------------------------------- */

static int64_t now_of(struct http_conn *c)
{
	return loop_now_ms(c->hl->loop);
}

static void put_str(struct wbuf *w, const char *s)
{
	wbuf_put(w, s, strlen(s));
}

static void put_u64(struct wbuf *w, uint64_t v)
{
	char b[24];
	int n = 0;
	do {
		b[sizeof(b) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	wbuf_put(w, b + sizeof(b) - n, (size_t)n);
}

static const char *loop_date(struct hloop *hl)
{
	time_t t = time(NULL);
	if (t != hl->date_sec) {
		fmt_http_date((int64_t)t, hl->date);
		hl->date_sec = t;
	}
	return hl->date;
}

/* ---- per-request arena ------------------------------------------------- */

void *http_req_alloc(struct http_req *req, size_t n)
{
	struct http_conn *c = req->conn;
	n = (n + 15) & ~(size_t)15;
	if (n <= ARENA_FIRST - c->arena_used) {
		void *p = c->arena + c->arena_used;
		c->arena_used += n;
		return p;
	}
	struct arena_blk *b = xmalloc(sizeof(*b) + n);
	b->next = c->arena_extra;
	c->arena_extra = b;
	return b->data;
}

char *http_req_strndup(struct http_req *req, const char *s, size_t n)
{
	char *d = http_req_alloc(req, n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

const char *http_req_path(struct http_req *req)
{
	struct http_conn *c = req->conn;
	if (!c->path_done) {
		c->path_done = true;
		char *d = http_req_alloc(req, req->h.path.len + 1);
		c->path_dec = http_pct_decode(req->h.path.base, req->h.path.len, d) < 0 ? NULL : d;
	}
	return c->path_dec;
}

static void arena_reset(struct http_conn *c)
{
	while (c->arena_extra) {
		struct arena_blk *b = c->arena_extra;
		c->arena_extra = b->next;
		free(b);
	}
	c->arena_used = 0;
	c->path_dec = NULL;
	c->path_done = false;
}

/* ---- response assembly ------------------------------------------------- */

static void release_body(struct http_conn *c)
{
	if (c->release) {
		void (*fn)(void *) = c->release;
		c->release = NULL;
		fn(c->release_arg);
	}
	c->ref = NULL;
	c->ref_len = c->ref_off = 0;
	c->file_left = 0;
	c->file_fd = -1;
}

/* Decides whether the connection survives this response. Called when the
 * head is written, so the answer can be announced in it. */
static void decide_keepalive(struct http_conn *c)
{
	bool ka = c->keepalive && !c->app_close;
	if (c->req_active && !http_body_done(&c->body)) {
		int64_t rem = http_body_remaining(&c->body);
		/* The client may be waiting for a 100 that will not come, or
		 * about to send a body too big to throw away cheaply. */
		if (c->req.h.expect_continue && !c->sent_continue)
			ka = false;
		else if (rem > HTTP_DRAIN_MAX)
			ka = false;
	}
	c->keepalive = ka;
}

/* Writes the status line and headers into out. body_len < 0 means a
 * stream of unknown length. */
static void build_head(struct http_conn *c, int status, int64_t body_len, const struct wbuf *hdrs)
{
	struct wbuf *o = &c->out;
	int minor = c->req_active ? c->req.h.minor : 1;
	bool bodyless = status < 200 || status == 204 || status == 304;
	decide_keepalive(c);
	c->chunked_out = false;
	if (body_len < 0 && !bodyless && !c->head_only) {
		if (minor >= 1)
			c->chunked_out = true;
		else
			c->keepalive = false; /* close-delimited for HTTP/1.0 */
	}
	put_str(o, "HTTP/1.1 ");
	put_u64(o, (uint64_t)status);
	wbuf_u8(o, ' ');
	put_str(o, http_reason(status));
	put_str(o, "\r\nDate: ");
	put_str(o, loop_date(c->hl));
	put_str(o, "\r\nServer: silt\r\n");
	wbuf_put(o, hdrs->p, hdrs->len);
	if (status >= 200 && status != 204) {
		if (c->chunked_out) {
			put_str(o, "Transfer-Encoding: chunked\r\n");
		} else if (body_len >= 0) {
			put_str(o, "Content-Length: ");
			put_u64(o, (uint64_t)body_len);
			put_str(o, "\r\n");
		} else if (c->head_only && minor >= 1) {
			/* HEAD of a stream of unknown length: say what GET would. */
			put_str(o, "Transfer-Encoding: chunked\r\n");
		}
	}
	if (!c->keepalive)
		put_str(o, "Connection: close\r\n");
	else if (minor == 0)
		put_str(o, "Connection: keep-alive\r\n");
	put_str(o, "\r\n");
}

/* Answers an error ourselves and closes afterwards. If the handler still
 * owes an answer it hears on_abort; its answer is then discarded. */
static void respond_error(struct http_conn *c, int status, const char *detail)
{
	struct http_server *s = c->srv;
	log_info("http", "%s: %d %s: %s", c->peer, status, http_reason(status), detail);
	if (c->req_active && c->app_owes && !c->req.aborted) {
		c->req.aborted = true;
		if (s->h.on_abort)
			s->h.on_abort(&c->req);
	}
	if (c->responded) {
		/* A response is already on its way; just close after it. */
		c->keepalive = false;
		return;
	}
	struct wbuf hdrs, body;
	wbuf_init(&hdrs, 0, 64 * 1024);
	wbuf_init(&body, 0, 1024 * 1024);
	if (s->h.format_error) {
		s->h.format_error(s->conf.udata, c->req_active ? &c->req : NULL, status, detail,
				  &hdrs, &body);
	}
	if (hdrs.err || body.err || !s->h.format_error) {
		wbuf_reset(&hdrs);
		wbuf_reset(&body);
		put_str(&hdrs, "Content-Type: text/plain\r\n");
		put_u64(&body, (uint64_t)status);
		wbuf_u8(&body, ' ');
		put_str(&body, http_reason(status));
		put_str(&body, ": ");
		put_str(&body, detail);
		put_str(&body, "\n");
	}
	c->keepalive = false;
	c->head_only = c->req_active && c->req.h.m == HTTP_HEAD;
	build_head(c, status, (int64_t)body.len, &hdrs);
	if (!c->head_only)
		wbuf_put(&c->out, body.p, body.len);
	wbuf_destroy(&hdrs);
	wbuf_destroy(&body);
	c->responded = c->resp_complete = true;
	c->rkind = RK_MEM;
	if (c->state == CS_HEAD)
		c->state = CS_REQ;
}

/* ---- the handler-facing API ------------------------------------------- */

void http_req_post(struct http_req *req, void (*fn)(void *arg), void *arg)
{
	loop_post(req->loop, fn, arg);
}

void http_body_pause(struct http_req *req)
{
	req->conn->body_paused = true;
}

void http_body_resume(struct http_req *req)
{
	struct http_conn *c = req->conn;
	if (!c->body_paused)
		return;
	c->body_paused = false;
	conn_run(c);
}

static bool header_ok(const char *name, const char *v, size_t vlen)
{
	size_t nl = strlen(name);
	if (nl == 0)
		return false;
	for (size_t i = 0; i < nl; i++)
		if ((uint8_t)name[i] <= 0x20 || name[i] == ':' || name[i] == 0x7f)
			return false;
	for (size_t i = 0; i < vlen; i++)
		if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
			return false;
	return true;
}

static bool name_is(const char *name, const char *s)
{
	return strcasecmp(name, s) == 0;
}

void http_resp_headern(struct http_req *req, const char *name, const char *value, size_t vlen)
{
	struct http_conn *c = req->conn;
	if (!header_ok(name, value, vlen)) {
		log_warn("http", "%s: dropping invalid response header %s", c->peer, name);
		return;
	}
	/* The names the layer owns all start with c, d, s or t: most headers
	 * are past this test after one comparison. */
	char c0 = (char)(name[0] | 0x20);
	if (c0 != 'c' && c0 != 'd' && c0 != 's' && c0 != 't')
		goto add;
	if (name_is(name, "content-length") || name_is(name, "transfer-encoding") ||
	    name_is(name, "date") || name_is(name, "server"))
		return;
	if (name_is(name, "connection")) {
		if (http_list_has((struct http_view){ value, vlen }, "close"))
			c->app_close = true;
		return;
	}
add:
	put_str(&c->hdrs, name);
	put_str(&c->hdrs, ": ");
	wbuf_put(&c->hdrs, value, vlen);
	put_str(&c->hdrs, "\r\n");
}

void http_resp_header(struct http_req *req, const char *name, const char *value)
{
	http_resp_headern(req, name, value, strlen(value));
}

void http_resp_headerf(struct http_req *req, const char *name, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(buf)) {
		http_resp_headern(req, name, buf, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	http_resp_headern(req, name, big, (size_t)n);
	free(big);
}

/* Common entry of every respond call. Returns 1 to go on, or a final
 * return value (<= 0) for the caller. */
static int respond_begin(struct http_conn *c)
{
	if (!c->app_owes || (c->rkind != RK_NONE && !c->req.aborted))
		return -EALREADY;
	if (c->req.aborted || c->state == CS_CLOSED) {
		c->app_owes = false;
		conn_run(c);
		return -EPIPE;
	}
	return 1;
}

static bool bodyless_status(int status)
{
	return status < 200 || status == 204 || status == 304;
}

int http_respond(struct http_req *req, int status, const void *body, size_t len)
{
	struct http_conn *c = req->conn;
	int rc = respond_begin(c);
	if (rc <= 0)
		return rc;
	if (len > c->srv->conf.max_mem_body) {
		log_error("http", "%s: in-memory response of %zu bytes over the cap, answering 500",
			  c->peer, len);
		wbuf_reset(&c->hdrs);
		status = 500;
		body = NULL;
		len = 0;
	}
	build_head(c, status, (int64_t)len, &c->hdrs);
	if (!c->head_only && !bodyless_status(status) && len)
		wbuf_put(&c->out, body, len);
	c->rkind = RK_MEM;
	c->responded = c->resp_complete = true;
	c->app_owes = false;
	conn_run(c);
	return 0;
}

int http_respond_ref(struct http_req *req, int status, const void *body, size_t len,
		     void (*release)(void *arg), void *arg)
{
	struct http_conn *c = req->conn;
	int rc = respond_begin(c);
	if (rc <= 0) {
		if (release)
			release(arg);
		return rc;
	}
	build_head(c, status, (int64_t)len, &c->hdrs);
	c->rkind = RK_REF;
	c->release = release;
	c->release_arg = arg;
	if (!c->head_only && !bodyless_status(status)) {
		c->ref = body;
		c->ref_len = len;
		c->ref_off = 0;
	}
	c->responded = c->resp_complete = true;
	c->app_owes = false;
	conn_run(c);
	return 0;
}

int http_respond_file(struct http_req *req, int status, int fd, off_t off, size_t len,
		      void (*release)(void *arg), void *arg)
{
	struct http_conn *c = req->conn;
	int rc = respond_begin(c);
	if (rc <= 0) {
		if (release)
			release(arg);
		return rc;
	}
	build_head(c, status, (int64_t)len, &c->hdrs);
	c->rkind = RK_FILE;
	c->release = release;
	c->release_arg = arg;
	if (!c->head_only && !bodyless_status(status)) {
		c->file_fd = fd;
		c->file_off = off;
		c->file_left = len;
	}
	c->responded = c->resp_complete = true;
	c->app_owes = false;
	conn_run(c);
	return 0;
}

int http_respond_stream(struct http_req *req, int status, int64_t content_length)
{
	struct http_conn *c = req->conn;
	int rc = respond_begin(c);
	if (rc <= 0)
		return rc;
	build_head(c, status, content_length, &c->hdrs);
	c->rkind = RK_STREAM;
	c->stream_left = content_length;
	c->stream_blocked = false;
	c->responded = true;
	if (bodyless_status(status))
		c->head_only = true;
	conn_run(c);
	return 0;
}

static void out_compact(struct http_conn *c)
{
	if (c->out_off == 0)
		return;
	memmove(c->out.p, c->out.p + c->out_off, c->out.len - c->out_off);
	c->out.len -= c->out_off;
	c->out_off = 0;
}

ssize_t http_stream_write(struct http_req *req, const void *p, size_t n)
{
	struct http_conn *c = req->conn;
	if (c->rkind != RK_STREAM || c->resp_complete)
		return -EALREADY;
	if (req->aborted || c->state == CS_CLOSED)
		return -EPIPE;
	if (c->stream_left >= 0 && (int64_t)n > c->stream_left)
		return -EINVAL;
	if (c->head_only) {
		if (c->stream_left >= 0)
			c->stream_left -= (int64_t)n;
		return (ssize_t)n;
	}
	size_t pending = c->out.len - c->out_off;
	/* Copied bytes go behind a reference still being sent, never ahead. */
	if (pending >= HTTP_STREAM_HIGH || c->ref_off < c->ref_len) {
		c->stream_blocked = true;
		return 0;
	}
	size_t take = SILT_MIN(n, HTTP_STREAM_HIGH - pending);
	if (take < n)
		c->stream_blocked = true;
	if (take == 0)
		return 0;
	if (c->out_off > c->out.len / 2)
		out_compact(c);
	if (c->chunked_out) {
		char hx[24];
		int hl = snprintf(hx, sizeof(hx), "%zx\r\n", take);
		wbuf_put(&c->out, hx, (size_t)hl);
	}
	wbuf_put(&c->out, p, take);
	if (c->chunked_out)
		put_str(&c->out, "\r\n");
	if (c->stream_left >= 0)
		c->stream_left -= (int64_t)take;
	conn_run(c);
	return (ssize_t)take;
}

ssize_t http_stream_write_ref(struct http_req *req, const void *p, size_t n)
{
	struct http_conn *c = req->conn;
	if (c->rkind != RK_STREAM || c->resp_complete || c->head_only || c->chunked_out ||
	    req->aborted || c->state == CS_CLOSED || n == 0) {
		/* Copied instead; the caller waits for on_writable all the same. */
		ssize_t w = http_stream_write(req, p, n);
		if (w > 0)
			c->stream_blocked = true;
		return w;
	}
	if (c->stream_left >= 0 && (int64_t)n > c->stream_left)
		return -EINVAL;
	if (c->ref_off < c->ref_len) {
		c->stream_blocked = true;
		return 0;
	}
	c->ref = p;
	c->ref_len = n;
	c->ref_off = 0;
	if (c->stream_left >= 0)
		c->stream_left -= (int64_t)n;
	c->stream_blocked = true;
	conn_run(c);
	return (ssize_t)n;
}

int http_stream_end(struct http_req *req)
{
	struct http_conn *c = req->conn;
	if (c->rkind != RK_STREAM || !c->app_owes)
		return -EALREADY;
	c->app_owes = false;
	if (req->aborted || c->state == CS_CLOSED) {
		conn_run(c);
		return -EPIPE;
	}
	if (c->chunked_out)
		put_str(&c->out, "0\r\n\r\n");
	if (c->stream_left > 0 && !c->head_only) {
		log_error("http", "%s: stream ended %" PRId64 " bytes short of its Content-Length",
			  c->peer, c->stream_left);
		c->keepalive = false;
	}
	c->resp_complete = true;
	conn_run(c);
	return 0;
}

/* ---- request life cycle ------------------------------------------------ */

/* on_done, then everything per-request is reset for the next one. */
static void req_finish(struct http_conn *c, bool ok)
{
	if (c->req_active) {
		c->req_active = false;
		if (c->srv->h.on_done)
			c->srv->h.on_done(&c->req, ok);
		__atomic_add_fetch(&c->hl->nreq, 1, __ATOMIC_RELAXED);
	}
	release_body(c);
	arena_reset(c);
	wbuf_reset(&c->hdrs);
	http_parser_reset(&c->parser);
	c->app_owes = false;
	c->responded = c->resp_complete = false;
	c->rkind = RK_NONE;
	c->app_close = false;
	c->head_only = false;
	c->chunked_out = false;
	c->stream_blocked = false;
	c->stream_left = -1;
	c->body_paused = c->body_end_called = c->sent_continue = false;
	memset(&c->req, 0, sizeof(c->req));
}

static void start_request(struct http_conn *c)
{
	struct http_server *s = c->srv;
	size_t hlen = c->parser.head_len;
	const char *old = (const char *)c->rbuf + c->rpos;
	c->req.conn = c;
	char *copy = http_req_alloc(&c->req, hlen);
	memcpy(copy, old, hlen);
	http_head_rebase(&c->req.h, old, hlen, copy);
	c->rpos += hlen;

	struct http_req *r = &c->req;
	r->id = __atomic_add_fetch(&s->req_seq, 1, __ATOMIC_RELAXED);
	r->peer = c->peer;
	r->loop = c->hl->loop;
	r->server_udata = s->conf.udata;
	r->aborted = false;
	r->udata = NULL;
	r->conn = c;
	c->keepalive = r->h.keep_alive;
	c->head_only = r->h.m == HTTP_HEAD;
	c->state = CS_REQ;
	c->last_io_ms = now_of(c);
	http_body_init(&c->body, r->h.content_length, s->conf.max_body);
	if (c->body.status) {
		/* Refused before the handler sees it. */
		respond_error(c, c->body.status, c->body.error);
		return;
	}
	c->req_active = true;
	c->app_owes = true;
	s->h.on_head(r);
}

/* ---- reading ----------------------------------------------------------- */

/* Makes room at the end of rbuf, growing it up to `limit`. */
static bool rbuf_room(struct http_conn *c, size_t limit)
{
	if (c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
	if (c->rlen < c->rcap)
		return true;
	if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
		return true;
	}
	if (c->rcap >= limit)
		return false;
	c->rcap = SILT_MIN(limit, c->rcap * 2);
	c->rbuf = xrealloc(c->rbuf, c->rcap);
	return true;
}

/* One recv into p. Returns bytes read, 0 for "nothing now", -1 when the
 * peer closed its side (c->eof) or the connection was closed. */
static ssize_t conn_recv(struct http_conn *c, void *p, size_t n)
{
	ssize_t got = recv(c->io.fd, p, n, 0);
	if (got > 0) {
		c->last_io_ms = now_of(c);
		return got;
	}
	if (got == 0) {
		c->eof = true;
		return -1;
	}
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	conn_close(c, strerror(errno));
	return -1;
}

/* One read into rbuf. Returns bytes read, 0 for "nothing now", -1 when
 * the peer closed its side (c->eof) or the connection was closed. */
static ssize_t conn_read(struct http_conn *c, size_t limit)
{
	if (c->eof || !rbuf_room(c, limit))
		return 0;
	size_t want = c->rcap - c->rlen;
	ssize_t n = conn_recv(c, c->rbuf + c->rlen, want);
	if (n > 0) {
		c->rlen += (size_t)n;
		c->read_short = (size_t)n < want;
	}
	return n;
}

/* ---- writing ----------------------------------------------------------- */

/* Writes pending output. Returns true on progress; closes on error. */
static bool conn_flush(struct http_conn *c)
{
	bool progress = false;
	c->write_blocked = false;
	while (c->io.fd >= 0) {
		struct iovec iov[2];
		int n = 0;
		size_t olen = c->out.len - c->out_off;
		if (olen)
			iov[n++] = (struct iovec){ c->out.p + c->out_off, olen };
		if (c->ref_off < c->ref_len)
			iov[n++] = (struct iovec){ (void *)(c->ref + c->ref_off), c->ref_len - c->ref_off };
		ssize_t w;
		if (n) {
			struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
			w = sendmsg(c->io.fd, &mh, MSG_NOSIGNAL);
		} else if (c->file_left) {
			w = sendfile(c->io.fd, c->file_fd, &c->file_off, SILT_MIN(c->file_left, (size_t)1 << 30));
			if (w == 0) {
				log_error("http", "%s: response file shorter than announced", c->peer);
				conn_close(c, NULL);
				return true;
			}
		} else {
			break;
		}
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				c->write_blocked = true;
				break;
			}
			conn_close(c, strerror(errno));
			return true;
		}
		progress = true;
		c->last_io_ms = now_of(c);
		size_t u = (size_t)w;
		if (olen) {
			size_t t = SILT_MIN(u, olen);
			c->out_off += t;
			u -= t;
		}
		if (n && u)
			c->ref_off += u;
		else if (!n)
			c->file_left -= u;
	}
	if (c->out_off == c->out.len)
		c->out_off = c->out.len = 0;
	return progress;
}

static bool output_pending(const struct http_conn *c)
{
	return c->out_off < c->out.len || c->ref_off < c->ref_len || c->file_left;
}

/* ---- the state machine ------------------------------------------------- */

static bool step_head(struct http_conn *c)
{
	if (c->rpos < c->rlen) {
		int rc = http_parse_head(&c->parser, (const char *)c->rbuf + c->rpos,
					 c->rlen - c->rpos, &c->req.h);
		if (rc == HTTP_PARSE_OK) {
			start_request(c);
			return true;
		}
		if (rc == HTTP_PARSE_ERROR) {
			respond_error(c, c->parser.status, c->parser.error);
			return true;
		}
	}
	if (c->eof) {
		if (c->rpos < c->rlen)
			conn_close(c, "peer closed mid-head");
		else
			conn_close(c, NULL);
		return true;
	}
	bool had = c->rpos < c->rlen;
	/* A read in this run that returned less than it asked for emptied the
	 * socket then; another would most likely be an EAGAIN syscall. The
	 * epoll registration is level-triggered, so bytes that came since
	 * wake the loop again. */
	if (!had && c->read_short)
		return false;
	ssize_t n = conn_read(c, RBUF_HEAD_MAX);
	if (n > 0 && !had)
		c->head_start_ms = now_of(c);
	return n != 0;
}

/* Hands buffered body bytes to the handler (or drops them when `drop`).
 * Returns true on progress. */
static bool body_feed(struct http_conn *c, bool drop)
{
	struct http_server *s = c->srv;
	bool progress = false;
	while (c->rpos < c->rlen && !http_body_done(&c->body)) {
		size_t skip, avail;
		int rc = http_body_next(&c->body, c->rbuf + c->rpos, c->rlen - c->rpos, &skip, &avail);
		c->rpos += skip;
		if (skip)
			progress = true;
		if (rc == HTTP_PARSE_ERROR) {
			if (drop)
				conn_close(c, c->body.error);
			else
				respond_error(c, c->body.status, c->body.error);
			return true;
		}
		if (rc != HTTP_BODY_DATA)
			continue;
		size_t k = avail;
		if (drop) {
			c->drained += avail;
		} else if (s->h.on_body) {
			k = s->h.on_body(&c->req, c->rbuf + c->rpos, avail);
			if (k > avail)
				k = avail;
		}
		http_body_consume(&c->body, k);
		c->rpos += k;
		progress = progress || k > 0;
		if (k < avail)
			c->body_paused = true;
		if (!drop && (c->body_paused || c->responded || c->io.fd < 0))
			break;
	}
	return progress;
}

static bool body_wanted(const struct http_conn *c)
{
	return c->req_active && !c->responded && !c->body_paused && !c->req.aborted &&
	       !http_body_done(&c->body);
}

/* A body larger than the read buffer is read in HTTP_RBUF_BODY pieces:
 * fewer syscalls and larger on_body pieces. Only an empty buffer is
 * swapped, so nothing is copied. */
static void rbuf_for_body(struct http_conn *c)
{
	if (c->rpos != c->rlen || c->rcap >= HTTP_RBUF_BODY)
		return;
	int64_t rem = http_body_remaining(&c->body);
	if (rem >= 0 && rem <= (int64_t)c->rcap)
		return;
	free(c->rbuf);
	c->rcap = HTTP_RBUF_BODY;
	c->rbuf = xmalloc(c->rcap);
	c->rpos = c->rlen = 0;
}

/* Reads body bytes straight into the handler's buffer (h.body_buf) when
 * the body is Content-Length framed and nothing is buffered, sparing the
 * copy out of rbuf. Never reads past the body, so a pipelined next request
 * stays in the socket. Returns like conn_read, or -2 when the handler
 * offers no buffer (read into rbuf instead). */
static ssize_t body_read_direct(struct http_conn *c)
{
	struct http_server *s = c->srv;
	int64_t rem = http_body_remaining(&c->body);
	if (!s->h.body_buf || c->body.status || rem <= 0 || c->eof)
		return -2;
	size_t cap = 0;
	uint8_t *p = s->h.body_buf(&c->req, &cap);
	if (!p || cap == 0)
		return -2;
	size_t want = (size_t)SILT_MIN((int64_t)SILT_MIN(cap, (size_t)HTTP_RBUF_BODY), rem);
	ssize_t n = conn_recv(c, p, want);
	if (n <= 0)
		return n;
	http_body_consume(&c->body, (size_t)n);
	/* The handler takes all of its own buffer (see body_buf). */
	s->h.on_body(&c->req, p, (size_t)n);
	return n;
}

static bool step_req(struct http_conn *c)
{
	struct http_server *s = c->srv;
	bool progress = false;
	if (body_wanted(c)) {
		if (c->req.h.expect_continue && !c->sent_continue) {
			c->sent_continue = true;
			put_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
			progress = true;
		}
		if (body_feed(c, false))
			progress = true;
		if (c->io.fd < 0)
			return true;
		if (body_wanted(c) && c->rpos == c->rlen) {
			if (c->eof) {
				conn_close(c, "peer closed mid-body");
				return true;
			}
			/* One buffer's worth per turn, then the loop's other
			 * connections: uploads on a loop then progress together
			 * (the S3 service hashes them side by side, once per
			 * iteration) instead of one draining its whole socket
			 * buffer while the others wait. Level-triggered epoll
			 * brings the connection back next iteration. */
			if (c->run_body_read < HTTP_RBUF_BODY) {
				ssize_t n = body_read_direct(c);
				if (n == -2) {
					rbuf_for_body(c);
					n = conn_read(c, c->rcap);
				}
				if (n != 0)
					progress = true;
				if (n > 0)
					c->run_body_read += (size_t)n;
			}
		}
	}
	if (c->io.fd < 0)
		return true;
	if (c->req_active && !c->responded && !c->req.aborted && http_body_done(&c->body) &&
	    !c->body_end_called && !c->body_paused) {
		/* An empty body the client announced with Expect: 100-continue
		 * still gets its 100: botocore waits for it and otherwise takes
		 * the final response for the interim one and misreads the next
		 * response on the connection. */
		if (c->req.h.expect_continue && !c->sent_continue) {
			c->sent_continue = true;
			put_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
		}
		c->body_end_called = true;
		s->h.on_body_end(&c->req);
		progress = true;
	}
	if (output_pending(c) && conn_flush(c))
		progress = true;
	if (c->io.fd < 0)
		return true;
	if (c->rkind == RK_STREAM && c->stream_blocked && !c->resp_complete && !c->req.aborted &&
	    c->out.len - c->out_off <= HTTP_STREAM_LOW && c->ref_off >= c->ref_len) {
		/* A reference that went out whole is the app's again. */
		c->ref = NULL;
		c->ref_len = c->ref_off = 0;
		c->stream_blocked = false;
		if (s->h.on_writable)
			s->h.on_writable(&c->req);
		progress = true;
	}
	if (c->responded && c->resp_complete && !c->app_owes && !output_pending(c)) {
		bool body_left = c->req_active ? !http_body_done(&c->body) : false;
		/* A peer that half-closed after pipelining still gets every
		 * answer: buffered heads are parsed before EOF counts. */
		bool ka = c->keepalive;
		req_finish(c, !c->req.aborted);
		if (!ka) {
			c->state = CS_LINGER;
			c->linger_start_ms = now_of(c);
			c->lingered = 0;
			shutdown(c->io.fd, SHUT_WR);
		} else if (body_left) {
			c->state = CS_DRAIN;
			c->drained = 0;
		} else {
			c->state = CS_HEAD;
			c->head_start_ms = c->last_io_ms = now_of(c);
			conn_shrink(c);
		}
		progress = true;
	}
	return progress;
}

/* Going idle: give back what a big head, body or response made grow. */
static void conn_shrink(struct http_conn *c)
{
	if (c->rpos == c->rlen && c->rcap > HTTP_RBUF_INITIAL) {
		c->rpos = c->rlen = 0;
		c->rcap = HTTP_RBUF_INITIAL;
		c->rbuf = xrealloc(c->rbuf, c->rcap);
	}
	if (c->out.cap > HTTP_STREAM_HIGH && c->out.len == 0) {
		size_t max = c->out.max;
		wbuf_destroy(&c->out);
		wbuf_init(&c->out, 0, max);
	}
}

static bool step_drain(struct http_conn *c)
{
	bool progress = body_feed(c, true);
	if (c->io.fd < 0)
		return true;
	if (http_body_done(&c->body)) {
		c->state = CS_HEAD;
		c->head_start_ms = c->last_io_ms = now_of(c);
		conn_shrink(c);
		return true;
	}
	if (c->drained > HTTP_DRAIN_MAX) {
		conn_close(c, NULL);
		return true;
	}
	if (c->eof) {
		conn_close(c, NULL);
		return true;
	}
	return conn_read(c, HTTP_RBUF_BODY) != 0 || progress;
}

static bool step_linger(struct http_conn *c)
{
	c->rpos = c->rlen = 0;
	if (c->eof || c->lingered > LINGER_MAX) {
		conn_close(c, NULL);
		return true;
	}
	ssize_t n = conn_read(c, c->rcap);
	if (n > 0)
		c->lingered += (size_t)n;
	return n != 0;
}

/* When the current state times out, or 0 for never. */
static int64_t conn_deadline(const struct http_conn *c)
{
	const struct http_server_conf *cf = &c->srv->conf;
	switch (c->state) {
	case CS_HEAD:
		if (c->rpos < c->rlen)
			return c->head_start_ms + cf->header_timeout_ms;
		return c->last_io_ms + cf->idle_timeout_ms;
	case CS_REQ:
		if (c->write_blocked)
			return c->last_io_ms + cf->send_timeout_ms;
		if (body_wanted(c))
			return c->last_io_ms + cf->body_timeout_ms;
		return 0;
	case CS_DRAIN:
		return c->last_io_ms + cf->body_timeout_ms;
	case CS_LINGER:
		return c->linger_start_ms + cf->linger_ms;
	default:
		return 0;
	}
}

static const char *timeout_name(const struct http_conn *c)
{
	switch (c->state) {
	case CS_HEAD:
		return c->rpos < c->rlen ? "header read timeout" : NULL; /* idle: quiet */
	case CS_REQ:
		return c->write_blocked ? "send timeout" : "body read timeout";
	case CS_DRAIN:
		return "body drain timeout";
	default:
		return NULL;
	}
}

static void timer_cb(struct loop_timer *t)
{
	struct http_conn *c = t->data;
	if (c->io.fd < 0)
		return;
	int64_t d = conn_deadline(c);
	if (d == 0)
		return;
	int64_t now = mono_ms();
	if (now < d) {
		loop_timer_start(c->hl->loop, &c->timer, d - now);
		return;
	}
	const char *why = timeout_name(c);
	if (c->state == CS_HEAD && !why)
		log_debug("http", "%s: idle keep-alive timeout", c->peer);
	conn_close(c, why);
	conn_run(c);
}

/* Epoll interest and the timer, after a run. */
static void conn_arm(struct http_conn *c)
{
	bool rd;
	switch (c->state) {
	case CS_HEAD:
	case CS_DRAIN:
	case CS_LINGER:
		rd = !c->eof;
		break;
	case CS_REQ:
		rd = !c->eof && body_wanted(c);
		break;
	default:
		rd = false;
	}
	int ev = (rd ? LOOP_READ : 0) | (c->write_blocked ? LOOP_WRITE : 0);
	loop_io_mod(c->hl->loop, &c->io, ev);
	int64_t d = conn_deadline(c);
	if (d == 0)
		return;
	/* Lazy timer: only re-arm when the deadline moved earlier; a late
	 * firing re-checks and re-arms (timer_cb). */
	if (!loop_timer_armed(&c->timer) || c->timer.deadline_ms > d) {
		int64_t ms = d - mono_ms();
		loop_timer_start(c->hl->loop, &c->timer, ms < 0 ? 0 : ms);
	}
}

static void conn_destroy(struct http_conn *c)
{
	req_finish(c, false);
	http_parser_destroy(&c->parser);
	wbuf_destroy(&c->out);
	wbuf_destroy(&c->hdrs);
	free(c->rbuf);
	free(c->arena);
	free(c);
}

static void conn_free_cb(void *arg)
{
	conn_destroy(arg);
}

static void conn_unlink(struct http_conn *c)
{
	struct hloop *hl = c->hl;
	if (c->prev)
		c->prev->next = c->next;
	else
		hl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

/* After a close: once the handler no longer owes an answer, the request
 * completes (on_done(false)) and the connection is freed -- from a posted
 * callback, so that on_done never runs inside an http_* call the handler
 * made and the memory outlives the current stack. */
static void conn_maybe_free(struct http_conn *c)
{
	if (c->free_posted || c->app_owes)
		return;
	c->free_posted = true;
	conn_unlink(c);
	loop_post(c->hl->loop, conn_free_cb, c);
}


static void conn_run(struct http_conn *c)
{
	if (c->running) {
		c->rerun = true;
		return;
	}
	c->running = true;
	c->run_body_read = 0;
	c->read_short = false;
	do {
		c->rerun = false;
		for (;;) {
			bool progress;
			switch (c->state) {
			case CS_HEAD:
				progress = step_head(c);
				break;
			case CS_REQ:
				progress = step_req(c);
				break;
			case CS_DRAIN:
				progress = step_drain(c);
				break;
			case CS_LINGER:
				progress = step_linger(c);
				break;
			default:
				progress = false;
			}
			if (!progress || c->io.fd < 0)
				break;
		}
	} while (c->rerun && c->io.fd >= 0);
	c->running = false;
	if (c->io.fd >= 0)
		conn_arm(c);
	else
		conn_maybe_free(c);
}

static void conn_close(struct http_conn *c, const char *why)
{
	if (c->io.fd < 0)
		return;
	if (why)
		log_info("http", "%s: connection closed: %s", c->peer, why);
	loop_io_del(c->hl->loop, &c->io);
	close(c->io.fd);
	c->io.fd = -1;
	loop_timer_stop(c->hl->loop, &c->timer);
	__atomic_sub_fetch(&c->srv->nconns, 1, __ATOMIC_RELAXED);
	int prev = c->state;
	c->state = CS_CLOSED;
	release_body(c);
	if (prev == CS_REQ && c->req_active && !c->req.aborted &&
	    (c->app_owes || output_pending(c))) {
		c->req.aborted = true;
		if (c->app_owes && c->srv->h.on_abort)
			c->srv->h.on_abort(&c->req);
	}
}

static void conn_on_io(struct loop_io *io, int events)
{
	struct http_conn *c = io->data;
	if (c->io.fd < 0)
		return;
	conn_run(c);
}

/* ---- accepting --------------------------------------------------------- */

struct handoff {
	struct hloop *hl;
	int fd;
	char peer[48];
};

static void adopt(struct hloop *hl, int fd, const char *peer)
{
	struct http_conn *c = xcalloc(1, sizeof(*c));
	c->hl = hl;
	c->srv = hl->srv;
	c->io.fd = fd;
	c->io.cb = conn_on_io;
	c->io.data = c;
	loop_timer_init(&c->timer, timer_cb, c);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->rcap = HTTP_RBUF_INITIAL;
	c->rbuf = xmalloc(c->rcap);
	c->arena = xmalloc(ARENA_FIRST);
	http_parser_init(&c->parser);
	wbuf_init(&c->out, 0, c->srv->conf.max_mem_body + 64 * 1024 + HTTP_STREAM_HIGH);
	wbuf_init(&c->hdrs, 0, 64 * 1024);
	c->file_fd = -1;
	c->stream_left = -1;
	c->state = CS_HEAD;
	c->last_io_ms = c->head_start_ms = loop_now_ms(hl->loop);
	c->next = hl->conns;
	if (hl->conns)
		hl->conns->prev = c;
	hl->conns = c;
	if (loop_io_add(hl->loop, &c->io, LOOP_READ) != 0) {
		conn_close(c, "epoll registration failed");
		conn_maybe_free(c);
		return;
	}
	conn_run(c);
}

static void adopt_cb(void *arg)
{
	struct handoff *h = arg;
	if (h->hl->closed) {
		close(h->fd);
		__atomic_sub_fetch(&h->hl->srv->nconns, 1, __ATOMIC_RELAXED);
	} else {
		adopt(h->hl, h->fd, h->peer);
	}
	free(h);
}

static void accept_cb(struct loop_io *io, int events)
{
	struct http_server *s = io->data;
	for (int i = 0; i < 64; i++) {
		char peer[48], ip[INET_ADDRSTRLEN];
		int fd = listener_accept(s->lfd, peer, sizeof(peer), ip);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("http", "accept: %s", strerror(errno));
			return;
		}
		if (__atomic_add_fetch(&s->nconns, 1, __ATOMIC_RELAXED) > s->conf.max_conns) {
			__atomic_sub_fetch(&s->nconns, 1, __ATOMIC_RELAXED);
			log_warn("http", "%s: refused, max connections (%d) reached", peer,
				 s->conf.max_conns);
			close(fd);
			continue;
		}
		struct hloop *hl = &s->loops[s->next_loop];
		s->next_loop = (s->next_loop + 1) % s->nloops;
		if (hl == &s->loops[0]) {
			adopt(hl, fd, peer);
			continue;
		}
		struct handoff *h = xmalloc(sizeof(*h));
		h->hl = hl;
		h->fd = fd;
		memcpy(h->peer, peer, sizeof(peer));
		loop_post(hl->loop, adopt_cb, h);
	}
}

/* ---- server ------------------------------------------------------------ */

void http_server_conf_defaults(struct http_server_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->host = "0.0.0.0";
	c->nthreads = 1;
	c->max_conns = 10000;
	c->header_timeout_ms = 30000;
	c->idle_timeout_ms = 60000;
	c->body_timeout_ms = 30000;
	c->send_timeout_ms = 60000;
	c->linger_ms = 2000;
	c->max_body = (5LL << 30) + (1LL << 20);
	c->max_mem_body = 64u << 20;
}

static void *loop_thread(void *arg)
{
	struct hloop *hl = arg;
	char name[16];
	snprintf(name, sizeof(name), "silt-http-%d", hl->idx);
	pthread_setname_np(pthread_self(), name);
	if (hl->srv->conf.sched_batch) {
		int rc = thread_sched_batch();
		if (rc < 0)
			log_warn("http", "%s: SCHED_BATCH refused: %s", name, strerror(-rc));
	}
	loop_run(hl->loop);
	return NULL;
}

int http_server_start(const struct http_server_conf *conf, struct http_server **out)
{
	if (!conf->handler || !conf->handler->on_head || !conf->handler->on_body_end)
		return -EINVAL;
	/* Writes use MSG_NOSIGNAL, but sendfile(2) can still raise SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	int bound_port;
	int fd = listener_open(conf->host ? conf->host : "0.0.0.0", conf->port, &bound_port);
	if (fd < 0)
		return fd;
	struct http_server *s = xcalloc(1, sizeof(*s));
	struct http_server_conf d;
	http_server_conf_defaults(&d);
	s->conf = *conf;
#define DEF(f) if (s->conf.f <= 0) s->conf.f = d.f
	DEF(nthreads);
	DEF(max_conns);
	DEF(header_timeout_ms);
	DEF(idle_timeout_ms);
	DEF(body_timeout_ms);
	DEF(send_timeout_ms);
	DEF(linger_ms);
	DEF(max_body);
	if (s->conf.max_mem_body == 0)
		s->conf.max_mem_body = d.max_mem_body;
#undef DEF
	s->h = *conf->handler;
	s->lfd = fd;
	s->port = bound_port;
	s->nloops = s->conf.nthreads;
	s->loops = xcalloc((size_t)s->nloops, sizeof(*s->loops));
	for (int i = 0; i < s->nloops; i++) {
		struct hloop *hl = &s->loops[i];
		hl->srv = s;
		hl->idx = i;
		hl->loop = loop_new();
	}
	struct hloop *l0 = &s->loops[0];
	l0->listen_io.fd = fd;
	l0->listen_io.cb = accept_cb;
	l0->listen_io.data = s;
	loop_io_add(l0->loop, &l0->listen_io, LOOP_READ);
	for (int i = 0; i < s->nloops; i++)
		pthread_create(&s->loops[i].thread, NULL, loop_thread, &s->loops[i]);
	log_info("http", "listening on %s:%d (%d loops)", s->conf.host ? s->conf.host : "0.0.0.0",
		 s->port, s->nloops);
	*out = s;
	return 0;
}

int http_server_port(const struct http_server *s)
{
	return s->port;
}

int http_server_nconns(const struct http_server *s)
{
	return __atomic_load_n(&s->nconns, __ATOMIC_RELAXED);
}

uint64_t http_server_nrequests(const struct http_server *s)
{
	uint64_t n = 0;
	for (int i = 0; i < s->nloops; i++)
		n += __atomic_load_n(&s->loops[i].nreq, __ATOMIC_RELAXED);
	return n;
}

/* How long a stopping loop waits for handlers to answer the requests it
 * aborted (work they posted to the loop, e.g. a copy's next step, answers
 * an aborted request at once) before it frees them regardless. */
#define STOP_DRAIN_MS 2000

/* Shutdown, on each loop, posted to itself until done. Every connection is
 * closed, which aborts the requests handlers still owe an answer; then the
 * loop keeps running its posted work until those answers come, because
 * that work points at the requests: freeing them first would leave it a
 * dangling pointer when it runs next (or inside loop_free). Loop 0 stops
 * accepting first; a connection it accepted just before may be on its way
 * to a loop that already closed, and adopt_cb refuses it there. */
static void stop_cb(void *arg)
{
	struct hloop *hl = arg;
	loop_stop(hl->loop);
}

static void close_all_cb(void *arg)
{
	struct hloop *hl = arg;
	if (!hl->closed) {
		hl->closed = true;
		hl->drain_until_ms = mono_ms() + STOP_DRAIN_MS;
		if (hl->idx == 0)
			loop_io_del(hl->loop, &hl->listen_io);
	}
	struct http_conn *c = hl->conns;
	while (c) {
		struct http_conn *next = c->next;
		conn_close(c, NULL);
		conn_maybe_free(c);
		c = next;
	}
	if (hl->conns && mono_ms() < hl->drain_until_ms) {
		loop_post(hl->loop, close_all_cb, hl);
		return;
	}
	while (hl->conns) {
		c = hl->conns;
		log_warn("http", "%s: handler did not answer an aborted request within %d ms of "
			 "shutdown; freeing it", c->peer, STOP_DRAIN_MS);
		/* An answer still owed is given up (see header). */
		c->app_owes = false;
		conn_unlink(c);
		if (!c->free_posted)
			conn_destroy(c);
	}
	/* After the frees conn_maybe_free posted, so that requests finish
	 * (on_done) on their own loop thread rather than inside loop_free. */
	loop_post(hl->loop, stop_cb, hl);
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nloops; i++)
		loop_post(s->loops[i].loop, close_all_cb, &s->loops[i]);
	for (int i = 0; i < s->nloops; i++)
		pthread_join(s->loops[i].thread, NULL);
	for (int i = 0; i < s->nloops; i++)
		loop_free(s->loops[i].loop);
	close(s->lfd);
	free(s->loops);
	free(s);
}
