/* Loopback tests of the HTTP server layer: a small echo/count/file/stream
 * application on 127.0.0.1:<ephemeral>, driven by a raw socket client so
 * every byte on the wire is ours. Every client socket has 5 s send/receive
 * timeouts, so a hung server fails a test instead of hanging it. */
#include "core/platform.h"
#include "core/loop.h"
#include "core/util.h"
#include "core/wbuf.h"
#include "http/server.h"
#include "test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <sched.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the test application --------------------------------------------- */

struct app_req {
	int kind;
	int64_t count;
	int64_t stream_left;
	bool async_busy; /* a thread holds the request */
	struct wbuf echo;
	uint8_t *dbuf;   /* K_DIRECT: the buffer body_buf hands out */
	int64_t direct;  /* K_DIRECT: bytes that arrived in it */
};

enum { K_ECHO, K_COUNT, K_DENY, K_FILE, K_STREAM, K_ASYNC, K_TRICKLE, K_DIRECT, K_HOLD, K_STEPS };

#define DIRECT_BUF 7001

static struct {
	int file_fd;
	size_t file_len;
	int releases;        /* atomic */
	int done_ok, done_fail, aborts; /* atomic */
	size_t max_piece;    /* atomic max */
	int steps;           /* atomic: turns of /steps requests */
	sem_t held, release; /* /hold: the loop is held until release */
} g_app;

static uint8_t pattern_byte(uint64_t i)
{
	return (uint8_t)(i * 7 % 251);
}

static bool path_is(struct http_req *req, const char *p)
{
	return http_view_eq(req->h.path, p);
}

static int64_t query_num(struct http_req *req, const char *name, int64_t dflt)
{
	struct http_view v;
	if (!http_query_param(req->h.query, name, &v) || v.len == 0 || v.len > 18)
		return dflt;
	char tmp[20];
	memcpy(tmp, v.base, v.len);
	tmp[v.len] = '\0';
	return strtoll(tmp, NULL, 10);
}

static void release_cb(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&g_app.releases, 1, __ATOMIC_RELAXED);
}

static void stream_produce(struct http_req *req)
{
	struct app_req *st = req->udata;
	uint8_t buf[10000];
	while (st->stream_left > 0) {
		size_t n = (size_t)SILT_MIN(st->stream_left, (int64_t)sizeof(buf));
		int64_t base = query_num(req, "n", 0) - st->stream_left;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern_byte((uint64_t)base + i);
		ssize_t w = http_stream_write(req, buf, n);
		if (w < 0) {
			http_stream_end(req);
			return;
		}
		st->stream_left -= w;
		if ((size_t)w < n)
			return; /* on_writable continues */
	}
	http_stream_end(req);
}

static void resume_cb(void *arg)
{
	struct http_req *req = arg;
	((struct app_req *)req->udata)->async_busy = false;
	/* A request whose connection died while we were away must still be
	 * answered, so the layer can finish it. */
	if (req->aborted)
		http_respond(req, 500, NULL, 0);
	else
		http_body_resume(req);
}

static void *async_thread(void *arg)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	struct http_req *req = arg;
	http_req_post(req, resume_cb, req);
	return NULL;
}

/* /hold: holds its loop (a posted callback that waits) until the test
 * releases it, then answers. */
static void hold_cb(void *arg)
{
	struct http_req *req = arg;
	sem_post(&g_app.held);
	sem_wait(&g_app.release);
	((struct app_req *)req->udata)->async_busy = false;
	http_respond(req, 200, "held", 4);
}

/* /steps: work done in turns posted to the loop, like a copy; only an
 * abort ends it, and the next turn answers the aborted request. */
static void steps_cb(void *arg)
{
	struct http_req *req = arg;
	if (req->aborted) {
		((struct app_req *)req->udata)->async_busy = false;
		http_respond(req, 500, NULL, 0);
		return;
	}
	__atomic_add_fetch(&g_app.steps, 1, __ATOMIC_RELAXED);
	http_req_post(req, steps_cb, req);
}

static void app_on_head(struct http_req *req)
{
	struct app_req *st = http_req_alloc(req, sizeof(*st));
	memset(st, 0, sizeof(*st));
	req->udata = st;
	wbuf_init(&st->echo, 0, 4 << 20);
	http_resp_header(req, "X-Request-Path", http_req_path(req) ? http_req_path(req) : "?");
	if (path_is(req, "/deny")) {
		st->kind = K_DENY;
		http_resp_header(req, "Content-Type", "text/plain");
		http_respond(req, 403, "denied\n", 7);
	} else if (path_is(req, "/file")) {
		st->kind = K_FILE;
		int64_t off = query_num(req, "off", 0);
		int64_t len = query_num(req, "len", (int64_t)g_app.file_len - off);
		http_respond_file(req, 200, g_app.file_fd, (off_t)off, (size_t)len, release_cb, NULL);
	} else if (path_is(req, "/stream")) {
		st->kind = K_STREAM;
		st->stream_left = query_num(req, "n", 0);
		http_respond_stream(req, 200, query_num(req, "cl", -1));
		stream_produce(req);
	} else if (path_is(req, "/async")) {
		st->kind = K_ASYNC;
		st->async_busy = true;
		http_body_pause(req);
		pthread_t t;
		pthread_create(&t, NULL, async_thread, req);
		pthread_detach(t);
	} else if (path_is(req, "/hold") || path_is(req, "/steps")) {
		st->kind = path_is(req, "/hold") ? K_HOLD : K_STEPS;
		st->async_busy = true;
		http_req_post(req, st->kind == K_HOLD ? hold_cb : steps_cb, req);
	} else if (path_is(req, "/count")) {
		st->kind = K_COUNT;
	} else if (path_is(req, "/trickle")) {
		st->kind = K_TRICKLE;
	} else if (path_is(req, "/direct")) {
		st->kind = K_DIRECT;
		st->dbuf = http_req_alloc(req, DIRECT_BUF);
	} else {
		st->kind = K_ECHO;
	}
}

static size_t app_on_body(struct http_req *req, const void *p, size_t n)
{
	struct app_req *st = req->udata;
	size_t cur = __atomic_load_n(&g_app.max_piece, __ATOMIC_RELAXED);
	while (n > cur && !__atomic_compare_exchange_n(&g_app.max_piece, &cur, n, false,
						       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	if (st->kind == K_TRICKLE && n > 1000) {
		/* Take a little, pause, resume from the loop a moment later. */
		st->count += 1000;
		http_req_post(req, resume_cb, req);
		return 1000;
	}
	st->count += (int64_t)n;
	if (st->kind == K_DIRECT && p == st->dbuf) {
		CHECK(n <= DIRECT_BUF);
		st->direct += (int64_t)n;
	}
	if (st->kind == K_ECHO || st->kind == K_ASYNC || st->kind == K_DIRECT)
		wbuf_put(&st->echo, p, n);
	return n;
}

static uint8_t *app_body_buf(struct http_req *req, size_t *cap)
{
	struct app_req *st = req->udata;
	if (st->kind != K_DIRECT)
		return NULL;
	*cap = DIRECT_BUF;
	return st->dbuf;
}

static void app_on_body_end(struct http_req *req)
{
	struct app_req *st = req->udata;
	if (st->kind == K_HOLD || st->kind == K_STEPS)
		return; /* the posted callback answers */
	if (st->kind == K_DIRECT) {
		char b[32];
		snprintf(b, sizeof(b), "%" PRId64, st->direct);
		http_resp_header(req, "X-Direct", b);
	}
	if (st->kind == K_ECHO || st->kind == K_ASYNC || st->kind == K_DIRECT) {
		http_respond(req, 200, st->echo.p, st->echo.len);
	} else {
		char b[64];
		int n = snprintf(b, sizeof(b), "count=%" PRId64, st->count);
		http_respond(req, 200, b, (size_t)n);
	}
}

static void app_on_writable(struct http_req *req)
{
	stream_produce(req);
}

static void app_on_abort(struct http_req *req)
{
	struct app_req *st = req->udata;
	__atomic_add_fetch(&g_app.aborts, 1, __ATOMIC_RELAXED);
	if (st->kind == K_STREAM)
		http_stream_end(req);
	else if (!st->async_busy)
		http_respond(req, 500, NULL, 0);
	/* else the thread's callback answers when it comes back. */
}

static void app_on_done(struct http_req *req, bool ok)
{
	struct app_req *st = req->udata;
	if (st)
		wbuf_destroy(&st->echo);
	__atomic_add_fetch(ok ? &g_app.done_ok : &g_app.done_fail, 1, __ATOMIC_RELAXED);
}

static void app_format_error(void *udata, const struct http_req *req, int status, const char *detail,
			     struct wbuf *hdrs, struct wbuf *body)
{
	const char *ct = "Content-Type: application/xml\r\n";
	wbuf_put(hdrs, ct, strlen(ct));
	char b[256];
	int n = snprintf(b, sizeof(b), "<Error><Code>%d</Code><Message>%s</Message></Error>", status,
			 detail);
	wbuf_put(body, b, (size_t)n);
}

static const struct http_handler g_handler = {
	.on_head = app_on_head,
	.on_body = app_on_body,
	.body_buf = app_body_buf,
	.on_body_end = app_on_body_end,
	.on_writable = app_on_writable,
	.on_abort = app_on_abort,
	.on_done = app_on_done,
	.format_error = app_format_error,
};

static struct http_server *start_server(void (*tweak)(struct http_server_conf *))
{
	memset(&g_app, 0, sizeof(g_app));
	g_app.file_fd = -1;
	struct http_server_conf conf;
	http_server_conf_defaults(&conf);
	conf.host = "127.0.0.1";
	conf.port = 0;
	conf.nthreads = 2;
	conf.handler = &g_handler;
	conf.max_body = 128 << 20;
	if (tweak)
		tweak(&conf);
	struct http_server *s = NULL;
	int rc = http_server_start(&conf, &s);
	CHECK_EQ_INT(rc, 0);
	return s;
}

/* ---- the raw client ---------------------------------------------------- */

struct cli {
	int fd;
	uint8_t buf[1 << 16];
	size_t len;
};

struct resp {
	int status;
	char head[8192];
	int64_t clen;
	bool chunked;
	bool conn_close;
	uint8_t *body; /* owned */
	size_t body_len;
};

static struct cli *cli_open(int port)
{
	struct cli *c = xcalloc(1, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	struct timeval tv = { 5, 0 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		close(c->fd);
		free(c);
		return NULL;
	}
	return c;
}

static void cli_close(struct cli *c)
{
	if (c) {
		close(c->fd);
		free(c);
	}
}

static bool cli_send(struct cli *c, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return false;
		}
		b += w;
		n -= (size_t)w;
	}
	return true;
}

static bool cli_sends(struct cli *c, const char *s)
{
	return cli_send(c, s, strlen(s));
}

/* Reads more bytes; >0 read, 0 EOF (or reset), -1 timeout. */
static ssize_t cli_fill(struct cli *c)
{
	if (c->len == sizeof(c->buf))
		return -1;
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n > 0) {
		c->len += (size_t)n;
		return n;
	}
	if (n == 0 || errno == ECONNRESET)
		return 0;
	return -1;
}

static void cli_drop(struct cli *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

static const char *find_hdr(const char *head, const char *name)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	const char *p = strcasestr(head, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return p;
}

/* Reads one response (head and body). 0 ok, -1 on EOF/timeout/garbage. */
static int cli_response(struct cli *c, struct resp *r, bool head_request)
{
	memset(r, 0, sizeof(*r));
	const uint8_t *end;
	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		if (cli_fill(c) <= 0)
			return -1;
	size_t hl = (size_t)(end - c->buf) + 4;
	if (hl >= sizeof(r->head))
		return -1;
	memcpy(r->head, c->buf, hl);
	r->head[hl] = '\0';
	cli_drop(c, hl);
	if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
		return -1;
	const char *v = find_hdr(r->head, "content-length");
	r->clen = v ? strtoll(v, NULL, 10) : -1;
	v = find_hdr(r->head, "transfer-encoding");
	r->chunked = v && strncasecmp(v, "chunked", 7) == 0;
	v = find_hdr(r->head, "connection");
	r->conn_close = v && strncasecmp(v, "close", 5) == 0;
	if (head_request || r->status < 200 || r->status == 204 || r->status == 304)
		return 0;
	struct wbuf body;
	wbuf_init(&body, 0, 512u << 20);
	if (r->chunked) {
		struct http_body b;
		http_body_init(&b, -1, 0);
		for (;;) {
			size_t skip, avail;
			int rc = http_body_next(&b, c->buf, c->len, &skip, &avail);
			if (rc == HTTP_PARSE_ERROR)
				goto bad;
			if (rc == HTTP_BODY_DATA) {
				wbuf_put(&body, c->buf + skip, avail);
				http_body_consume(&b, avail);
				cli_drop(c, skip + avail);
				continue;
			}
			cli_drop(c, skip);
			if (rc == HTTP_PARSE_OK)
				break;
			if (cli_fill(c) <= 0)
				goto bad;
		}
	} else if (r->clen >= 0) {
		while ((int64_t)body.len < r->clen) {
			if (c->len == 0 && cli_fill(c) <= 0)
				goto bad;
			size_t k = (size_t)SILT_MIN((int64_t)c->len, r->clen - (int64_t)body.len);
			wbuf_put(&body, c->buf, k);
			cli_drop(c, k);
		}
	} else {
		/* Close-delimited. */
		for (;;) {
			wbuf_put(&body, c->buf, c->len);
			c->len = 0;
			ssize_t n = cli_fill(c);
			if (n == 0)
				break;
			if (n < 0)
				goto bad;
		}
	}
	r->body_len = body.len;
	r->body = wbuf_steal(&body, &r->body_len);
	return 0;
bad:
	wbuf_destroy(&body);
	return -1;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* True once the server closed the connection (within the 5 s timeout). */
static bool cli_wait_eof(struct cli *c)
{
	for (;;) {
		c->len = 0;
		ssize_t n = cli_fill(c);
		if (n == 0)
			return true;
		if (n < 0)
			return false;
	}
}

static bool body_is(const struct resp *r, const char *s)
{
	return r->body_len == strlen(s) && memcmp(r->body, s, r->body_len) == 0;
}

/* ---- tests ------------------------------------------------------------- */

/* Policies of this process's threads named silt-http-*: counts of those
 * under SCHED_BATCH and of the others. */
static void http_thread_policies(int *batch, int *other)
{
	*batch = *other = 0;
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		bool http = fgets(comm, sizeof(comm), f) && strncmp(comm, "silt-http-", 10) == 0;
		fclose(f);
		if (!http)
			continue;
		if (sched_getscheduler((pid_t)atoi(e->d_name)) == SCHED_BATCH)
			(*batch)++;
		else
			(*other)++;
	}
	closedir(d);
}

static void tweak_batch(struct http_server_conf *c)
{
	c->sched_batch = true;
}

/* sched_batch puts every loop thread under SCHED_BATCH; without it they
 * keep the default policy. */
TEST(http_server_sched_batch)
{
	for (int on = 0; on < 2; on++) {
		struct http_server *s = start_server(on ? tweak_batch : NULL);
		REQUIRE(s);
		/* One answered request: the loop threads are up and named. */
		struct cli *c = cli_open(http_server_port(s));
		REQUIRE(c);
		struct resp r;
		CHECK(cli_sends(c, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
		REQUIRE(cli_response(c, &r, false) == 0);
		resp_free(&r);
		cli_close(c);
		/* A thread names itself just before it sets its policy: wait (1 s
		 * at most) for both threads to be past that. */
		int batch, other, tries = 0;
		do {
			http_thread_policies(&batch, &other);
		} while ((on ? batch : other) < 2 && ++tries < 200 && usleep(5000) == 0);
		CHECK_EQ_INT(batch, on ? 2 : 0);
		CHECK_EQ_INT(other, on ? 0 : 2);
		http_server_stop(s);
	}
}

TEST(http_server_keepalive_and_pipelining)
{
	struct http_server *s = start_server(NULL);
	REQUIRE(s);
	int port = http_server_port(s);
	CHECK(port > 0);
	struct cli *c = cli_open(port);
	REQUIRE(c);
	struct resp r;
	/* Two requests one after the other on one connection. */
	CHECK(cli_sends(c, "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(body_is(&r, "hello"));
	CHECK(!r.conn_close);
	CHECK(find_hdr(r.head, "date") && find_hdr(r.head, "server"));
	CHECK(strstr(r.head, "X-Request-Path: /echo\r\n"));
	resp_free(&r);
	CHECK(cli_sends(c, "GET /a%20b HTTP/1.1\r\nHost: t\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(strstr(r.head, "X-Request-Path: /a b\r\n"));
	CHECK_EQ_INT(r.clen, 0);
	resp_free(&r);

	/* Three pipelined requests in one write, answered in order. */
	CHECK(cli_sends(c, "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
			   "PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "2\r\nde\r\n1\r\nf\r\n0\r\n\r\n"
			   "PUT /count HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nwxyz"));
	const char *want[] = { "abc", "def", "count=4" };
	for (int i = 0; i < 3; i++) {
		REQUIRE(cli_response(c, &r, false) == 0);
		CHECK_EQ_INT(r.status, 200);
		CHECK(body_is(&r, want[i]));
		resp_free(&r);
	}
	/* HTTP/1.0 without keep-alive: answer, then close. */
	CHECK(cli_sends(c, "GET /x HTTP/1.0\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK(r.conn_close);
	resp_free(&r);
	CHECK(cli_wait_eof(c));
	cli_close(c);
	/* Pipelined, then half-closed: both still answered, then EOF. */
	c = cli_open(port);
	REQUIRE(c);
	CHECK(cli_sends(c, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n"));
	shutdown(c->fd, SHUT_WR);
	for (int i = 0; i < 2; i++) {
		REQUIRE(cli_response(c, &r, false) == 0);
		CHECK_EQ_INT(r.status, 200);
		resp_free(&r);
	}
	CHECK(cli_wait_eof(c));
	cli_close(c);
	http_server_stop(s);
	CHECK_EQ_INT(g_app.done_ok, 8);
	CHECK_EQ_INT(g_app.done_fail, 0);
}

TEST(http_server_expect_continue)
{
	struct http_server *s = start_server(NULL);
	REQUIRE(s);
	struct cli *c = cli_open(http_server_port(s));
	REQUIRE(c);
	struct resp r;
	CHECK(cli_sends(c, "PUT /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
			   "Content-Length: 4\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 100);
	CHECK(cli_sends(c, "data"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(body_is(&r, "data"));
	resp_free(&r);
	/* A handler that refuses in on_head: no 100, final answer, close. */
	CHECK(cli_sends(c, "PUT /deny HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
			   "Content-Length: 1000000\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 403);
	CHECK(r.conn_close);
	CHECK(body_is(&r, "denied\n"));
	resp_free(&r);
	CHECK(cli_wait_eof(c));
	cli_close(c);

	/* Without Expect, a small unread body is drained and the connection
	 * stays usable. */
	c = cli_open(http_server_port(s));
	REQUIRE(c);
	CHECK(cli_sends(c, "PUT /deny HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789"
			   "GET /after HTTP/1.1\r\nHost: t\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 403);
	CHECK(!r.conn_close);
	resp_free(&r);
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(strstr(r.head, "X-Request-Path: /after\r\n"));
	resp_free(&r);
	cli_close(c);
	http_server_stop(s);
}

TEST(http_server_chunked_upload)
{
	struct http_server *s = start_server(NULL);
	REQUIRE(s);
	struct cli *c = cli_open(http_server_port(s));
	REQUIRE(c);
	/* Sent in awkward pieces with pauses, so the server sees partial
	 * size lines and chunk data split across reads. */
	const char *pieces[] = {
		"PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1",
		"0;ext=1\r",
		"\n0123456789abcdef",
		"\r\n3\r\nxyz\r",
		"\n0\r\nx-amz-checksum-crc32: AAAA\r\n",
		"\r\n",
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(pieces); i++) {
		CHECK(cli_sends(c, pieces[i]));
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	struct resp r;
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(body_is(&r, "0123456789abcdefxyz"));
	resp_free(&r);
	/* Broken framing: 400 from the layer (XML from the hook), close. */
	CHECK(cli_sends(c, "PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "zz\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 400);
	CHECK(r.conn_close);
	CHECK(r.body_len > 7 && memcmp(r.body, "<Error>", 7) == 0);
	resp_free(&r);
	CHECK(cli_wait_eof(c));
	cli_close(c);
	http_server_stop(s);
	CHECK_EQ_INT(g_app.aborts, 1);
	CHECK_EQ_INT(g_app.done_ok, 1);
	CHECK_EQ_INT(g_app.done_fail, 1);
}

/* body_buf: a Content-Length body is read straight into the handler's
 * buffer (never past the body: the pipelined request after it must stay
 * intact), a chunked one through the layer's buffer. */
TEST(http_server_body_buf_direct)
{
	struct http_server *s = start_server(NULL);
	REQUIRE(s);
	struct cli *c = cli_open(http_server_port(s));
	REQUIRE(c);
	const size_t n = 300001;
	uint8_t *body = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		body[i] = pattern_byte(i);
	char head[128];
	snprintf(head, sizeof(head), "PUT /direct HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
	CHECK(cli_sends(c, head));
	/* Pieces with pauses, so the server reads with an empty buffer. */
	for (size_t off = 0; off < n;) {
		size_t k = SILT_MIN(n - off, (size_t)40000);
		CHECK(cli_send(c, body + off, k));
		off += k;
		if (off < n) {
			struct timespec ts = { 0, 2 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		} else {
			CHECK(cli_sends(c, "PUT /direct HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
					   "GET /after HTTP/1.1\r\nHost: t\r\n\r\n"));
		}
	}
	struct resp r;
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(r.body_len == n && memcmp(r.body, body, n) == 0);
	const char *d = find_hdr(r.head, "x-direct");
	CHECK(d && atoll(d) > 0);
	resp_free(&r);
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(body_is(&r, "xyz"));
	resp_free(&r);
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(strstr(r.head, "X-Request-Path: /after\r\n"));
	resp_free(&r);
	CHECK(cli_sends(c, "PUT /direct HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "5\r\nhello\r\n0\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(body_is(&r, "hello"));
	d = find_hdr(r.head, "x-direct");
	CHECK(d && atoll(d) == 0);
	resp_free(&r);
	free(body);
	cli_close(c);
	http_server_stop(s);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void big_body(bool chunked)
{
	struct http_server *s = start_server(NULL);
	REQUIRE(s);
	struct cli *c = cli_open(http_server_port(s));
	REQUIRE(c);
	const size_t total = 64u << 20, piece = 1u << 20;
	uint8_t *buf = xmalloc(piece + 64);
	memset(buf, 'z', piece + 64);
	long rss0 = rss_kib();
	int64_t t0 = mono_us();
	if (chunked) {
		CHECK(cli_sends(c, "PUT /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
		for (size_t sent = 0; sent < total; sent += piece) {
			char hx[32];
			snprintf(hx, sizeof(hx), "%zx\r\n", piece);
			CHECK(cli_sends(c, hx));
			CHECK(cli_send(c, buf, piece));
			CHECK(cli_sends(c, "\r\n"));
		}
		CHECK(cli_sends(c, "0\r\n\r\n"));
	} else {
		char head[128];
		snprintf(head, sizeof(head), "PUT /count HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
			 total);
		CHECK(cli_sends(c, head));
		for (size_t sent = 0; sent < total; sent += piece)
			CHECK(cli_send(c, buf, piece));
	}
	struct resp r;
	REQUIRE(cli_response(c, &r, false) == 0);
	int64_t us = mono_us() - t0;
	long rss1 = rss_kib();
	CHECK_EQ_INT(r.status, 200);
	char want[64];
	snprintf(want, sizeof(want), "count=%zu", total);
	CHECK(body_is(&r, want));
	/* The server never held more than its read buffer of the body. */
	CHECK(g_app.max_piece <= HTTP_RBUF_BODY);
	CHECK(rss1 - rss0 < 16 * 1024);
	fprintf(stderr, "    64 MiB %s upload: %.0f MB/s, max piece %zu, rss +%ld KiB\n",
		chunked ? "chunked" : "Content-Length", (double)total / (double)us, g_app.max_piece,
		rss1 - rss0);
	resp_free(&r);
	free(buf);
	cli_close(c);
	http_server_stop(s);
}

TEST(http_server_64mib_body)
{
	big_body(false);
	big_body(true);
}

TEST(http_server_file_head_stream)
{
	struct http_server *s = start_server(NULL);
	REQUIRE(s);
	/* A 3 MiB + 5 byte volume file. */
	char path[512];
	snprintf(path, sizeof(path), "%s/vol", test_tmpdir());
	size_t flen = (3u << 20) + 5;
	uint8_t *data = xmalloc(flen);
	for (size_t i = 0; i < flen; i++)
		data[i] = pattern_byte(i);
	CHECK_EQ_INT(write_file_atomic(path, data, flen), 0);
	g_app.file_fd = open(path, O_RDONLY | O_CLOEXEC);
	g_app.file_len = flen;
	REQUIRE(g_app.file_fd >= 0);

	struct cli *c = cli_open(http_server_port(s));
	REQUIRE(c);
	struct resp r;
	CHECK(cli_sends(c, "GET /file HTTP/1.1\r\nHost: t\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.clen, (int64_t)flen);
	CHECK(r.body_len == flen && memcmp(r.body, data, flen) == 0);
	resp_free(&r);
	/* A range. */
	CHECK(cli_sends(c, "GET /file?off=1000&len=70000 HTTP/1.1\r\nHost: t\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK(r.body_len == 70000 && memcmp(r.body, data + 1000, 70000) == 0);
	resp_free(&r);
	/* HEAD: the GET's Content-Length, no body; the next response on the
	 * connection parses cleanly, so no body bytes were sent. */
	CHECK(cli_sends(c, "HEAD /file HTTP/1.1\r\nHost: t\r\n\r\n"));
	REQUIRE(cli_response(c, &r, true) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.clen, (int64_t)flen);
	resp_free(&r);
	/* Streamed response of unknown length: chunked. */
	CHECK(cli_sends(c, "GET /stream?n=1000000 HTTP/1.1\r\nHost: t\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(r.chunked);
	CHECK_EQ_INT(r.body_len, 1000000);
	bool same = r.body_len == 1000000;
	for (size_t i = 0; same && i < r.body_len; i++)
		same = r.body[i] == pattern_byte(i);
	CHECK(same);
	resp_free(&r);
	/* Streamed with a known length, bigger than the stream queue. */
	CHECK(cli_sends(c, "GET /stream?n=3000000&cl=3000000 HTTP/1.1\r\nHost: t\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK(!r.chunked);
	CHECK_EQ_INT(r.clen, 3000000);
	CHECK_EQ_INT(r.body_len, 3000000);
	resp_free(&r);
	CHECK(cli_sends(c, "HEAD /stream?n=10 HTTP/1.1\r\nHost: t\r\n\r\n"
			   "GET /after HTTP/1.1\r\nHost: t\r\n\r\n"));
	REQUIRE(cli_response(c, &r, true) == 0);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK(strstr(r.head, "X-Request-Path: /after\r\n"));
	resp_free(&r);
	cli_close(c);
	http_server_stop(s);
	CHECK_EQ_INT(g_app.releases, 3);
	close(g_app.file_fd);
	free(data);
}

TEST(http_server_async_and_backpressure)
{
	struct http_server *s = start_server(NULL);
	REQUIRE(s);
	struct cli *c = cli_open(http_server_port(s));
	REQUIRE(c);
	struct resp r;
	/* Body paused in on_head, resumed from another thread. */
	CHECK(cli_sends(c, "PUT /async HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
			   "Content-Length: 6\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 100);
	CHECK(cli_sends(c, "async!"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK(body_is(&r, "async!"));
	resp_free(&r);
	/* A handler that takes 1000 bytes per pause. */
	size_t n = 300000;
	char head[128];
	snprintf(head, sizeof(head), "PUT /trickle HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
	CHECK(cli_sends(c, head));
	char *body = xmalloc(n);
	memset(body, 'b', n);
	CHECK(cli_send(c, body, n));
	free(body);
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK(body_is(&r, "count=300000"));
	resp_free(&r);
	cli_close(c);

	/* The client leaves while the handler works on another thread: the
	 * request is finished (on_done(false)) only once the handler answers. */
	c = cli_open(http_server_port(s));
	REQUIRE(c);
	CHECK(cli_sends(c, "PUT /async HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"));
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	cli_close(c);
	for (int i = 0; i < 200 && __atomic_load_n(&g_app.done_fail, __ATOMIC_RELAXED) == 0; i++)
		nanosleep(&ts, NULL);
	CHECK_EQ_INT(g_app.done_fail, 1);

	/* Many clients on both loops at once. */
	enum { NC = 8, NR = 50 };
	struct cli *cs[NC];
	for (int i = 0; i < NC; i++)
		REQUIRE((cs[i] = cli_open(http_server_port(s))));
	for (int k = 0; k < NR; k++) {
		for (int i = 0; i < NC; i++)
			CHECK(cli_sends(cs[i], "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok"));
		for (int i = 0; i < NC; i++) {
			REQUIRE(cli_response(cs[i], &r, false) == 0);
			CHECK(body_is(&r, "ok"));
			resp_free(&r);
		}
	}
	for (int i = 0; i < NC; i++)
		cli_close(cs[i]);
	http_server_stop(s);
	CHECK_EQ_INT(g_app.done_ok, 2 + NC * NR);
}

static void short_timeouts(struct http_server_conf *c)
{
	c->header_timeout_ms = 300;
	c->idle_timeout_ms = 500;
	c->body_timeout_ms = 300;
	c->linger_ms = 300;
	c->max_conns = 4;
}

TEST(http_server_timeouts_and_errors)
{
	struct http_server *s = start_server(short_timeouts);
	REQUIRE(s);
	int port = http_server_port(s);
	struct resp r;
	/* Slow head: closed after the header timeout (one log line). */
	struct cli *c = cli_open(port);
	REQUIRE(c);
	int64_t t0 = mono_ms();
	CHECK(cli_sends(c, "GET / HTTP/1.1\r\nHo"));
	CHECK(cli_wait_eof(c));
	int64_t el = mono_ms() - t0;
	CHECK(el >= 250 && el < 3000);
	cli_close(c);
	/* A byte every 100 ms does not extend the header deadline. */
	c = cli_open(port);
	REQUIRE(c);
	t0 = mono_ms();
	for (int i = 0; i < 6; i++) {
		cli_sends(c, "X");
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	CHECK(cli_wait_eof(c));
	el = mono_ms() - t0;
	CHECK(el < 1500);
	cli_close(c);
	/* Idle keep-alive timeout. */
	c = cli_open(port);
	REQUIRE(c);
	CHECK(cli_sends(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	resp_free(&r);
	t0 = mono_ms();
	CHECK(cli_wait_eof(c));
	el = mono_ms() - t0;
	CHECK(el >= 400 && el < 3000);
	cli_close(c);
	/* Stalled body: the handler hears on_abort, the connection closes. */
	c = cli_open(port);
	REQUIRE(c);
	CHECK(cli_sends(c, "PUT /count HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789"));
	CHECK(cli_wait_eof(c));
	cli_close(c);
	/* Malformed head: 400 with the hook's body, then close. */
	c = cli_open(port);
	REQUIRE(c);
	CHECK(cli_sends(c, "GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n"));
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 400);
	CHECK(r.conn_close);
	CHECK(strstr(r.head, "Content-Type: application/xml"));
	resp_free(&r);
	CHECK(cli_wait_eof(c));
	cli_close(c);
	/* 414, 505, 501, 413. */
	struct {
		const char *req;
		int status;
	} cases[] = {
		{ "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505 },
		{ "PUT / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501 },
		{ "PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n", 413 },
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(cases); i++) {
		c = cli_open(port);
		REQUIRE(c);
		CHECK(cli_sends(c, cases[i].req));
		REQUIRE(cli_response(c, &r, false) == 0);
		CHECK_EQ_INT(r.status, cases[i].status);
		resp_free(&r);
		CHECK(cli_wait_eof(c));
		cli_close(c);
	}
	c = cli_open(port);
	REQUIRE(c);
	char *longreq = xmalloc(20000);
	memset(longreq, 'a', 20000);
	memcpy(longreq, "GET /", 5);
	CHECK(cli_send(c, longreq, 20000));
	free(longreq);
	REQUIRE(cli_response(c, &r, false) == 0);
	CHECK_EQ_INT(r.status, 414);
	resp_free(&r);
	CHECK(cli_wait_eof(c));
	cli_close(c);
	/* Max connections: the fifth concurrent connection is closed. */
	struct cli *cs[5];
	for (int i = 0; i < 5; i++)
		REQUIRE((cs[i] = cli_open(port)));
	CHECK(cli_wait_eof(cs[4]));
	CHECK(cli_sends(cs[0], "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
	REQUIRE(cli_response(cs[0], &r, false) == 0);
	CHECK_EQ_INT(r.status, 200);
	resp_free(&r);
	for (int i = 0; i < 5; i++)
		cli_close(cs[i]);
	http_server_stop(s);
	CHECK_EQ_INT(g_app.aborts, 1);
}

static void *http_stop_thread(void *arg)
{
	http_server_stop(arg);
	return NULL;
}

/* Loop 0 accepts a connection and hands it to loop 1 after loop 1 has
 * closed for shutdown (loops close in no set order). The handoff used to
 * run inside loop_free and serve the request there, on a stopped server,
 * leaking the connection; it must be refused: closed, no answer. */
TEST(http_server_handoff_after_loop_closed_is_refused)
{
	struct http_server *s = start_server(NULL);
	REQUIRE(s);
	sem_init(&g_app.held, 0, 0);
	sem_init(&g_app.release, 0, 0);
	int port = http_server_port(s);
	/* Round-robin from loop 0: a -> 0, b -> 1, c -> 0; the next goes to 1. */
	struct cli *cs[3];
	struct resp r;
	for (int i = 0; i < 3; i++) {
		REQUIRE((cs[i] = cli_open(port)));
		CHECK(cli_sends(cs[i], "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok"));
		REQUIRE(cli_response(cs[i], &r, false) == 0);
		resp_free(&r);
	}
	/* a holds loop 0 in a posted callback. */
	CHECK(cli_sends(cs[0], "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n"));
	sem_wait(&g_app.held);
	pthread_t t;
	pthread_create(&t, NULL, http_stop_thread, s);
	CHECK(cli_wait_eof(cs[1]));
	struct cli *late = cli_open(port);
	REQUIRE(late);
	CHECK(cli_sends(late, "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok"));
	sem_post(&g_app.release);
	pthread_join(t, NULL);
	CHECK(cli_wait_eof(cs[2]));
	CHECK_EQ_INT(cli_fill(late), 0);
	CHECK_EQ_INT(late->len, 0);
	for (int i = 0; i < 3; i++)
		cli_close(cs[i]);
	cli_close(late);
	sem_destroy(&g_app.held);
	sem_destroy(&g_app.release);
}

/* A request whose work goes on in turns posted to its loop is aborted by
 * the shutdown; the loop waits for the next turn to answer it instead of
 * freeing it under that turn (a use-after-free at every S3 shutdown that
 * caught an UploadPartCopy in progress). */
TEST(http_server_stop_waits_for_posted_work)
{
	struct http_server *s = start_server(NULL);
	REQUIRE(s);
	struct cli *c = cli_open(http_server_port(s));
	REQUIRE(c);
	CHECK(cli_sends(c, "GET /steps HTTP/1.1\r\nHost: t\r\n\r\n"));
	struct timespec ts = { 0, 1000 * 1000 };
	for (int i = 0; i < 5000 && __atomic_load_n(&g_app.steps, __ATOMIC_RELAXED) < 100; i++)
		nanosleep(&ts, NULL);
	CHECK(__atomic_load_n(&g_app.steps, __ATOMIC_RELAXED) >= 100);
	http_server_stop(s);
	CHECK_EQ_INT(g_app.aborts, 1);
	CHECK_EQ_INT(g_app.done_fail, 1);
	CHECK(cli_wait_eof(c));
	cli_close(c);
}
