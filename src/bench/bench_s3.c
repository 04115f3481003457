/* bench_s3.c - `silt bench s3`: an S3 load generator with its own small
 * HTTP/1.1 client on the epoll loop of core/loop.h.
 *
 * Shape: C connections, each keep-alive with one request in flight, share a
 * counter of work (object i of N); a connection that finishes a request takes
 * the next index. PUT bodies all come from one pre-generated buffer (no
 * per-request allocation or copy: sendmsg goes straight from it), signed with
 * SigV4 and x-amz-content-sha256: UNSIGNED-PAYLOAD, so the client never
 * hashes the body and measures the server, not itself. GET bodies are read
 * into a per-connection buffer and dropped (length always checked, content
 * with --verify). --unsigned sends the same requests without any auth, which
 * is how nginx (WebDAV PUT, static GET) serves as the peer. The list mode
 * walks a bucket with ListObjectsV2 continuation tokens on one connection,
 * one page at a time, and times each page.
 *
 * Every phase is bounded by its request count and by the run's wall-clock
 * cap (--duration-s, a loop timer); too many connection errors in a row end
 * a phase early. A request the server refuses (non-2xx), a connection error
 * or a short body counts as a failure; any failure makes the exit status 1.
 *
 * Threading: everything runs on the calling thread, inside one struct loop
 * per phase. Response bodies never outlive the callback that reads them. */
#include "core/platform.h"
#include "bench/bench.h"
#include "core/loop.h"
#include "core/wbuf.h"
#include "http/parser.h"
#include "s3/auth.h"

#include <netdb.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define S3B_RESP_HEAD_MAX (64 * 1024)
#define S3B_ERR_BODY_MAX 4096          /* kept of a non-2xx body, for its <Code> */
#define S3B_LIST_BODY_MAX (16 << 20)   /* one ListObjectsV2 page */
#define S3B_MAX_CONN_ERRORS 50         /* in a row, before a phase gives up */
#define S3B_PRINT_ERRORS 5             /* failures printed in full per phase */
#define S3B_PROGRESS_MS 10000
#define S3B_READS_PER_EVENT 64         /* fairness between connections */

enum s3b_kind { K_BUCKET, K_PUT, K_GET, K_LIST, K_POPULATE };

enum s3b_cstate { C_IDLE, C_CONNECTING, C_BUSY };

struct s3b_run;

struct s3b_conn {
	struct loop_io io; /* io.fd < 0: no connection */
	struct s3b_run *run;
	enum s3b_cstate st;
	int64_t nreq; /* responses received on this connection */

	/* The request in flight. */
	int64_t idx;
	int64_t t0;
	bool retried;
	struct wbuf req; /* request head */
	size_t req_off;
	int64_t body_len, body_off;
	bool sent;
	int wr_err; /* errno of a failed send; the response may still come */

	/* Its response. */
	char *rbuf;
	size_t rcap, rlen;
	bool have_head;
	bool until_eof; /* body delimited by the server closing */
	bool got_any;
	bool bad_body;  /* verify or size mismatch seen in the data */
	struct bench_s3_resp resp;
	struct http_body dec;
	int64_t got;
	struct wbuf keep;
	size_t keep_max;
};

struct s3b_run {
	const struct bench_opts *o;
	struct loop *loop;
	const struct addrinfo *ai;
	enum s3b_kind kind;
	const char *name;
	const uint8_t *payload;
	int64_t size; /* PUT body / expected GET body */
	int64_t n;    /* requests (objects) to issue; list: keys cap */
	int64_t next, ok, failures, bytes;
	int64_t *lat;
	int64_t nlat, lat_cap;
	int64_t t_start, t_last, deadline_ns;
	bool stopped, capped;
	int conn_errors, printed, idle;
	struct s3b_conn *conns;
	int nconns;
	struct loop_timer cap_timer, progress_timer;
	char amz_date[17];
	int64_t amz_sec;
	struct bench_s3_signer signer;
	struct wbuf scratch;
	/* list */
	char *token;
	int64_t keys, pages, pages_cap;
	bool list_end;
	/* bucket */
	bool bucket_existed;
	/* Client CPU over the phase, in percent of one core: near 100 says
	 * the figures are the client's limit, not the server's. */
	double cpu_pct;
};

static int64_t cpu_ns(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* ---- endpoint, response head, list page: pure helpers ---- */

int bench_s3_parse_endpoint(const char *ep, struct bench_opts *o, char *err, size_t errlen)
{
	static const char scheme[] = "http://";
	if (strncmp(ep, "https://", 8) == 0) {
		snprintf(err, errlen, "--endpoint: https is not supported (plain http only)");
		return -SILT_EINVAL;
	}
	if (strncmp(ep, scheme, sizeof(scheme) - 1) != 0) {
		snprintf(err, errlen, "--endpoint: '%s' does not start with http://", ep);
		return -SILT_EINVAL;
	}
	const char *a = ep + sizeof(scheme) - 1;
	size_t alen = strcspn(a, "/?#");
	if (a[alen] && strcmp(a + alen, "/") != 0) {
		snprintf(err, errlen, "--endpoint: '%s' has a path; give http://host[:port]", ep);
		return -SILT_EINVAL;
	}
	if (alen == 0 || alen > BENCH_S3_MAX_HOST || memchr(a, '@', alen)) {
		snprintf(err, errlen, "--endpoint: '%s' has no usable host", ep);
		return -SILT_EINVAL;
	}
	const char *host = a, *port = NULL;
	size_t hlen;
	if (a[0] == '[') {
		const char *rb = memchr(a, ']', alen);
		if (!rb || rb == a + 1) {
			snprintf(err, errlen, "--endpoint: bad IPv6 literal in '%s'", ep);
			return -SILT_EINVAL;
		}
		host = a + 1;
		hlen = (size_t)(rb - host);
		if (rb + 1 < a + alen) {
			if (rb[1] != ':') {
				snprintf(err, errlen, "--endpoint: junk after ']' in '%s'", ep);
				return -SILT_EINVAL;
			}
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(a, ':', alen);
		hlen = colon ? (size_t)(colon - a) : alen;
		if (colon)
			port = colon + 1;
	}
	size_t plen = port ? (size_t)(a + alen - port) : 0;
	if (hlen == 0 || (port && (plen == 0 || plen > 5))) {
		snprintf(err, errlen, "--endpoint: bad host or port in '%s'", ep);
		return -SILT_EINVAL;
	}
	long pv = 80;
	if (port) {
		pv = 0;
		for (size_t i = 0; i < plen; i++) {
			if (port[i] < '0' || port[i] > '9') {
				snprintf(err, errlen, "--endpoint: bad port in '%s'", ep);
				return -SILT_EINVAL;
			}
			pv = pv * 10 + (port[i] - '0');
		}
		if (pv < 1 || pv > 65535) {
			snprintf(err, errlen, "--endpoint: port out of range in '%s'", ep);
			return -SILT_EINVAL;
		}
	}
	for (size_t i = 0; i < hlen; i++) {
		unsigned char ch = (unsigned char)host[i];
		if (ch <= ' ' || ch >= 0x7f) {
			snprintf(err, errlen, "--endpoint: bad character in host of '%s'", ep);
			return -SILT_EINVAL;
		}
	}
	memcpy(o->s3_host, host, hlen);
	o->s3_host[hlen] = '\0';
	snprintf(o->s3_port, sizeof(o->s3_port), "%ld", pv);
	memcpy(o->s3_authority, a, alen);
	o->s3_authority[alen] = '\0';
	return 0;
}

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Strict non-negative decimal into *out; false on junk or overflow. */
static bool parse_dec(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

int bench_s3_parse_resp(const char *buf, size_t len, struct bench_s3_resp *r)
{
	size_t scan = SILT_MIN(len, (size_t)S3B_RESP_HEAD_MAX);
	const char *end = scan >= 4 ? memmem(buf, scan, "\r\n\r\n", 4) : NULL;
	if (!end)
		return len >= S3B_RESP_HEAD_MAX ? -SILT_ETOOBIG : -SILT_EAGAIN;
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	r->head_len = (size_t)(end - buf) + 4;
	const char *p = buf, *lim = end + 2; /* lines end at their CRLF, the last one included */
	const char *eol = memmem(p, (size_t)(lim - p), "\r\n", 2);
	/* "HTTP/1.x SSS[ reason]" */
	if (!eol || eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (eol - p > 12 && p[12] != ' '))
		return -SILT_EINVAL;
	r->minor = p[7] - '0';
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	bool ka = false, cl_seen = false;
	for (p = eol + 2; p < end + 2; p = eol + 2) {
		eol = memmem(p, (size_t)(lim - p), "\r\n", 2);
		if (!eol)
			return -SILT_EINVAL;
		if (eol == p)
			break;
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p)
			return -SILT_EINVAL;
		for (const char *q = p; q < colon; q++) {
			if (!is_tchar((unsigned char)*q))
				return -SILT_EINVAL;
		}
		struct http_view name = { p, (size_t)(colon - p) };
		const char *v = colon + 1, *ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		struct http_view val = { v, (size_t)(ve - v) };
		if (http_view_ieq(name, "content-length")) {
			int64_t cl;
			if (!parse_dec(v, val.len, &cl) || (cl_seen && cl != r->content_length))
				return -SILT_EINVAL;
			r->content_length = cl;
			cl_seen = true;
		} else if (http_view_ieq(name, "transfer-encoding")) {
			if (!http_list_has(val, "chunked"))
				return -SILT_EINVAL;
			r->chunked = true;
		} else if (http_view_ieq(name, "connection")) {
			if (http_list_has(val, "close"))
				r->close = true;
			if (http_list_has(val, "keep-alive"))
				ka = true;
		}
	}
	if (r->chunked)
		r->content_length = -1;
	if (r->minor == 0 && !ka)
		r->close = true;
	return 0;
}

/* The text between <tag> and </tag> after `from`, or false. */
static bool xml_elem(const char *xml, size_t len, const char *tag, const char **val, size_t *vlen)
{
	char open[64], close[64];
	int on = snprintf(open, sizeof(open), "<%s>", tag);
	int cn = snprintf(close, sizeof(close), "</%s>", tag);
	const char *a = memmem(xml, len, open, (size_t)on);
	if (!a)
		return false;
	a += on;
	const char *b = memmem(a, (size_t)(xml + len - a), close, (size_t)cn);
	if (!b)
		return false;
	*val = a;
	*vlen = (size_t)(b - a);
	return true;
}

/* Decodes the XML entities of a text node (the five named ones and numeric
 * references below 0x80, which is all a token can contain) into a heap
 * string; NULL for anything else. */
static char *xml_text_dup(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] != '&') {
			out[o++] = s[i++];
			continue;
		}
		const char *semi = memchr(s + i, ';', SILT_MIN(n - i, (size_t)12));
		if (!semi)
			goto bad;
		const char *e = s + i + 1;
		size_t el = (size_t)(semi - e);
		char c;
		if (el == 3 && memcmp(e, "amp", 3) == 0) {
			c = '&';
		} else if (el == 2 && memcmp(e, "lt", 2) == 0) {
			c = '<';
		} else if (el == 2 && memcmp(e, "gt", 2) == 0) {
			c = '>';
		} else if (el == 4 && memcmp(e, "quot", 4) == 0) {
			c = '"';
		} else if (el == 4 && memcmp(e, "apos", 4) == 0) {
			c = '\'';
		} else if (el >= 2 && e[0] == '#') {
			long v = 0;
			bool hex = e[1] == 'x' || e[1] == 'X';
			size_t k = hex ? 2 : 1;
			if (k >= el)
				goto bad;
			for (; k < el; k++) {
				int d;
				if (e[k] >= '0' && e[k] <= '9')
					d = e[k] - '0';
				else if (hex && e[k] >= 'a' && e[k] <= 'f')
					d = e[k] - 'a' + 10;
				else if (hex && e[k] >= 'A' && e[k] <= 'F')
					d = e[k] - 'A' + 10;
				else
					goto bad;
				v = v * (hex ? 16 : 10) + d;
				if (v >= 0x80)
					goto bad;
			}
			if (v == 0)
				goto bad;
			c = (char)v;
		} else {
			goto bad;
		}
		out[o++] = c;
		i = (size_t)(semi - s) + 1;
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

int bench_s3_parse_page(const char *xml, size_t len, struct bench_s3_page *p)
{
	memset(p, 0, sizeof(*p));
	if (!memmem(xml, len, "<ListBucketResult", 17))
		return -SILT_EINVAL;
	const char *v;
	size_t vl;
	p->truncated = xml_elem(xml, len, "IsTruncated", &v, &vl) && vl == 4 && memcmp(v, "true", 4) == 0;
	if (!xml_elem(xml, len, "KeyCount", &v, &vl) || !parse_dec(v, vl, &p->key_count)) {
		p->key_count = 0;
		for (const char *q = xml; (q = memmem(q, (size_t)(xml + len - q), "<Key>", 5)) != NULL; q += 5)
			p->key_count++;
	}
	if (xml_elem(xml, len, "NextContinuationToken", &v, &vl) && vl > 0) {
		p->next_token = xml_text_dup(v, vl);
		if (!p->next_token)
			return -SILT_EINVAL;
	}
	if (p->truncated && !p->next_token)
		return -SILT_EINVAL;
	return 0;
}

#define S3B_SIGNED_HEADERS "host;x-amz-content-sha256;x-amz-date"

void bench_s3_signer_destroy(struct bench_s3_signer *s)
{
	if (s->ready)
		wbuf_destroy(&s->canon);
	OPENSSL_cleanse(&s->hk, sizeof(s->hk));
	memset(s, 0, sizeof(*s));
}

int bench_s3_authorization(const struct bench_opts *o, struct bench_s3_signer *s, const char *method,
			   const char *path, const char *query, const char *amz_date, struct wbuf *out)
{
	if (strlen(amz_date) != 16 || strlen(o->region) > S3_AUTH_MAX_REGION)
		return -SILT_EINVAL;
	if (!s->ready) {
		wbuf_init(&s->canon, 512, 64 * 1024);
		s->ready = true;
	}
	if (memcmp(s->date8, amz_date, 8) != 0) {
		uint8_t key[32];
		s3_auth_signing_key(o->secret_key, strlen(o->secret_key), amz_date, o->region, strlen(o->region),
				    key);
		s3_hmac_key_init(&s->hk, key, sizeof(key));
		OPENSSL_cleanse(key, sizeof(key));
		memcpy(s->date8, amz_date, 8);
		s->date8[8] = '\0';
	}
	struct s3_hdr hdrs[3] = {
		{ "host", 4, o->s3_authority, strlen(o->s3_authority) },
		{ "x-amz-content-sha256", 20, "UNSIGNED-PAYLOAD", 16 },
		{ "x-amz-date", 10, amz_date, 16 },
	};
	struct s3_auth_req req = {
		.method = method,
		.path = path,
		.path_len = strlen(path),
		.query = query,
		.query_len = query ? strlen(query) : 0,
		.hdrs = hdrs,
		.nhdrs = 3,
	};
	struct wbuf *canon = &s->canon;
	wbuf_reset(canon);
	char scope[S3_AUTH_SCOPE_MAX], sig[65];
	int rc = s3_auth_canonical_request(&req, S3B_SIGNED_HEADERS, strlen(S3B_SIGNED_HEADERS), NULL,
					   "UNSIGNED-PAYLOAD", 16, canon);
	if (rc == 0 && canon->err)
		rc = -SILT_EINVAL;
	if (rc == 0) {
		snprintf(scope, sizeof(scope), "%.8s/%s/s3/aws4_request", amz_date, o->region);
		s3_auth_sign_canonical_with(&s->hk, amz_date, scope, canon->p, canon->len, sig);
	}
	if (rc == 0) {
		wbuf_put(out, "AWS4-HMAC-SHA256 Credential=", 28);
		wbuf_put(out, o->access_key, strlen(o->access_key));
		wbuf_u8(out, '/');
		wbuf_put(out, scope, strlen(scope));
		wbuf_put(out, ", SignedHeaders=" S3B_SIGNED_HEADERS ", Signature=",
			 strlen(", SignedHeaders=" S3B_SIGNED_HEADERS ", Signature="));
		wbuf_put(out, sig, 64);
	}
	return rc;
}

/* ---- the client ---- */

static const char *kind_name(enum s3b_kind k)
{
	switch (k) {
	case K_BUCKET:
		return "create-bucket";
	case K_PUT:
		return "put";
	case K_GET:
		return "get";
	case K_LIST:
		return "list";
	case K_POPULATE:
		return "populate";
	}
	return "?";
}

static bool kind_puts(enum s3b_kind k)
{
	return k == K_PUT || k == K_POPULATE || k == K_BUCKET;
}

static void on_io(struct loop_io *io, int events);
static void issue_next(struct s3b_conn *c);

static void conn_close(struct s3b_conn *c)
{
	if (c->io.fd >= 0) {
		loop_io_del(c->run->loop, &c->io);
		close(c->io.fd);
	}
	c->io.fd = -1;
	c->nreq = 0;
}

static void resp_reset(struct s3b_conn *c)
{
	c->rlen = 0;
	c->have_head = false;
	c->until_eof = false;
	c->got_any = false;
	c->bad_body = false;
	c->got = 0;
	c->wr_err = 0;
	wbuf_reset(&c->keep);
	c->keep_max = 0;
}

/* One line per failure for the first few; the count is in the summary. */
static void report_failure(struct s3b_run *run, struct s3b_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report_failure(struct s3b_run *run, struct s3b_conn *c, const char *fmt, ...)
{
	run->failures++;
	if (run->printed >= S3B_PRINT_ERRORS) {
		if (run->printed++ == S3B_PRINT_ERRORS)
			fprintf(stderr, "silt bench: s3 %s: further failures not shown\n", run->name);
		return;
	}
	run->printed++;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "silt bench: s3 %s #%" PRId64 ": %s\n", run->name, c->idx, msg);
}

/* Ends the request in flight as a failure. A request that died on a reused
 * connection before any response byte may only have met the server's idle
 * timeout: it is sent once more on a new connection, as HTTP clients do. */
static void fail_req(struct s3b_conn *c, bool conn_level, const char *what, int err)
{
	struct s3b_run *run = c->run;
	bool reused = c->nreq > 0;
	conn_close(c);
	if (conn_level && reused && !c->got_any && !c->retried && !run->stopped) {
		c->retried = true;
		resp_reset(c);
		c->req_off = 0;
		c->body_off = 0;
		c->sent = false;
		issue_next(c);
		return;
	}
	if (err)
		report_failure(run, c, "%s: %s", what, strerror(err));
	else
		report_failure(run, c, "%s", what);
	if (run->kind == K_LIST)
		run->list_end = true;
	if (conn_level && ++run->conn_errors >= S3B_MAX_CONN_ERRORS && !run->stopped) {
		fprintf(stderr, "silt bench: s3 %s: %d connection errors in a row, giving up\n", run->name,
			run->conn_errors);
		run->stopped = true;
	}
	c->idx = -1;
	issue_next(c);
}

static void set_interest(struct s3b_conn *c, int ev)
{
	int rc = loop_io_mod(c->run->loop, &c->io, ev);
	if (rc)
		fail_req(c, true, "epoll_ctl", -rc);
}

static int start_connect(struct s3b_conn *c)
{
	const struct addrinfo *ai = c->run->ai;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	c->io.fd = fd;
	int rc = loop_io_add(c->run->loop, &c->io, LOOP_WRITE);
	if (rc) {
		close(fd);
		c->io.fd = -1;
		return rc;
	}
	c->st = C_CONNECTING;
	return 0;
}

static void update_date(struct s3b_run *run)
{
	int64_t now = (int64_t)time(NULL);
	if (now != run->amz_sec) {
		run->amz_sec = now;
		s3_auth_format_time(now, run->amz_date);
	}
}

/* Writes the request head for c->idx into c->req. */
static int build_request(struct s3b_conn *c)
{
	struct s3b_run *run = c->run;
	const struct bench_opts *o = run->o;
	struct wbuf *path = &run->scratch;
	char query[4096] = "";
	const char *method = "GET";
	int64_t clen = -1;

	wbuf_reset(path);
	wbuf_u8(path, '/');
	s3_url_encode_buf(path, o->bucket, strlen(o->bucket), true);
	switch (run->kind) {
	case K_BUCKET:
		method = "PUT";
		clen = 0;
		break;
	case K_PUT:
	case K_POPULATE:
	case K_GET: {
		char key[1024];
		int kn = snprintf(key, sizeof(key), "%so%08" PRId64, o->prefix, c->idx);
		wbuf_u8(path, '/');
		s3_url_encode_buf(path, key, (size_t)kn, false);
		if (kind_puts(run->kind)) {
			method = "PUT";
			clen = run->size;
		}
		break;
	}
	case K_LIST: {
		/* Parameters in canonical (sorted) order. */
		struct wbuf q;
		wbuf_init(&q, 256, sizeof(query) - 1);
		if (run->token) {
			wbuf_put(&q, "continuation-token=", 19);
			s3_url_encode_buf(&q, run->token, strlen(run->token), true);
			wbuf_u8(&q, '&');
		}
		char mk[48];
		int mkn = snprintf(mk, sizeof(mk), "list-type=2&max-keys=%" PRId64, o->max_keys);
		wbuf_put(&q, mk, (size_t)mkn);
		if (*o->prefix) {
			wbuf_put(&q, "&prefix=", 8);
			s3_url_encode_buf(&q, o->prefix, strlen(o->prefix), true);
		}
		bool bad = q.err;
		if (!bad) {
			memcpy(query, q.p, q.len);
			query[q.len] = '\0';
		}
		wbuf_destroy(&q);
		if (bad)
			return -SILT_ETOOBIG;
		break;
	}
	}
	wbuf_u8(path, 0);
	if (path->err)
		return -SILT_ETOOBIG;
	const char *p = (const char *)path->p;

	struct wbuf *h = &c->req;
	wbuf_reset(h);
	char line[256];
	wbuf_put(h, method, strlen(method));
	wbuf_u8(h, ' ');
	wbuf_put(h, p, strlen(p));
	if (*query) {
		wbuf_u8(h, '?');
		wbuf_put(h, query, strlen(query));
	}
	int ln = snprintf(line, sizeof(line), " HTTP/1.1\r\nHost: %s\r\n", o->s3_authority);
	wbuf_put(h, line, (size_t)ln);
	if (clen >= 0) {
		ln = snprintf(line, sizeof(line), "Content-Length: %" PRId64 "\r\n", clen);
		wbuf_put(h, line, (size_t)ln);
	}
	if (!o->unsigned_req) {
		update_date(run);
		ln = snprintf(line, sizeof(line), "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: %s\r\n",
			      run->amz_date);
		wbuf_put(h, line, (size_t)ln);
		wbuf_put(h, "Authorization: ", 15);
		int rc = bench_s3_authorization(o, &run->signer, method, p, *query ? query : NULL, run->amz_date, h);
		if (rc)
			return rc;
		wbuf_put(h, "\r\n", 2);
	}
	wbuf_put(h, "\r\n", 2);
	if (h->err)
		return -SILT_ETOOBIG;
	c->req_off = 0;
	c->body_len = clen > 0 ? clen : 0;
	c->body_off = 0;
	c->sent = false;
	return 0;
}

static bool have_work(struct s3b_run *run)
{
	if (run->stopped)
		return false;
	if (run->kind == K_LIST)
		return !run->list_end && run->keys < run->n && run->pages < run->pages_cap;
	return run->next < run->n;
}

static void do_write(struct s3b_conn *c);

/* Gives c its next request, or parks it; the phase ends when every
 * connection is parked. Called with c->idx set for a retry. */
static void issue_next(struct s3b_conn *c)
{
	struct s3b_run *run = c->run;
	bool retry = c->idx >= 0;
	if (!retry) {
		if (!have_work(run)) {
			/* Closed at once: an idle socket the server then closes
			 * would keep a level-triggered loop spinning. */
			conn_close(c);
			c->st = C_IDLE;
			if (++run->idle == run->nconns)
				loop_stop(run->loop);
			return;
		}
		c->idx = run->kind == K_LIST ? run->pages : run->next;
		run->next++;
		c->retried = false;
		c->t0 = bench_now_ns();
	}
	int rc = build_request(c);
	if (rc) {
		/* Every request of the phase would be as large: stop. */
		run->stopped = true;
		fail_req(c, false, "request head over 64 KiB", 0);
		return;
	}
	resp_reset(c);
	if (c->io.fd < 0) {
		rc = start_connect(c);
		if (rc) {
			char what[300];
			snprintf(what, sizeof(what), "connect %s", run->o->s3_authority);
			fail_req(c, true, what, -rc);
		}
		return;
	}
	c->st = C_BUSY;
	int64_t idx = c->idx;
	set_interest(c, LOOP_READ | LOOP_WRITE);
	/* Write at once on a warm connection: no epoll round for a socket
	 * that is almost always writable. */
	if (c->st == C_BUSY && c->idx == idx && c->io.fd >= 0)
		do_write(c);
}

/* The response to c's request is complete (or, until_eof, the server closed
 * after it). Judges it, records it, and moves on. */
static void complete(struct s3b_conn *c)
{
	struct s3b_run *run = c->run;
	int64_t now = bench_now_ns();
	int st = c->resp.status;
	bool ok = st >= 200 && st < 300;
	bool must_close = c->resp.close || !c->sent || c->until_eof;
	run->conn_errors = 0;
	c->nreq++;
	if (run->kind == K_BUCKET && st == 409 && memmem(c->keep.p, c->keep.len, "BucketAlreadyOwnedByYou", 23)) {
		ok = true;
		run->bucket_existed = true;
	}
	if (!ok) {
		const char *code;
		size_t cl = 0;
		if (!xml_elem((const char *)c->keep.p, c->keep.len, "Code", &code, &cl))
			code = "";
		report_failure(run, c, "HTTP %d %s%s%.*s%s", st, http_reason(st), cl ? ": " : "",
			       (int)SILT_MIN(cl, (size_t)100), code,
			       c->sent ? "" : " (before the request body was sent)");
	} else if (run->kind == K_GET && (c->got != run->size || c->bad_body)) {
		ok = false;
		report_failure(run, c, "GET body of %" PRId64 " bytes %s (expected %" PRId64 ")", c->got,
			       c->bad_body && c->got == run->size ? "differs from what was put" : "has the wrong size",
			       run->size);
	} else if (run->kind == K_LIST) {
		struct bench_s3_page pg;
		if (c->keep.err || bench_s3_parse_page((const char *)c->keep.p, c->keep.len, &pg)) {
			ok = false;
			report_failure(run, c, "ListObjectsV2 page %" PRId64 " unreadable (%zu bytes)", c->idx,
				       c->keep.len);
			run->list_end = true;
		} else {
			free(run->token);
			run->token = pg.next_token;
			run->keys += pg.key_count;
			run->pages++;
			if (!pg.truncated)
				run->list_end = true;
		}
	}
	if (ok) {
		run->ok++;
		if (run->kind == K_GET)
			run->bytes += c->got;
		else if (kind_puts(run->kind))
			run->bytes += c->body_len;
		if (run->nlat < run->lat_cap)
			run->lat[run->nlat++] = now - c->t0;
		run->t_last = now;
	} else if (run->kind == K_LIST) {
		run->list_end = true;
	}
	if (must_close)
		conn_close(c);
	c->idx = -1;
	issue_next(c);
}

/* Body bytes of the response. */
static void body_data(struct s3b_conn *c, const char *p, size_t n)
{
	struct s3b_run *run = c->run;
	if (run->kind == K_GET && c->resp.status / 100 == 2) {
		if (c->got + (int64_t)n > run->size)
			c->bad_body = true;
		else if (run->o->verify && memcmp(run->payload + c->got, p, n) != 0)
			c->bad_body = true;
	}
	c->got += (int64_t)n;
	if (c->keep_max) {
		if (c->keep.len + n > c->keep_max)
			c->keep.err = true;
		else
			wbuf_put(&c->keep, p, n);
	}
}

/* Feeds response bytes after the head; 1 when the response is complete,
 * 0 when more are needed, -1 on a framing error (already reported). */
static int body_feed(struct s3b_conn *c, const char *p, size_t len)
{
	if (c->until_eof) {
		body_data(c, p, len);
		return 0;
	}
	while (len > 0 && !http_body_done(&c->dec)) {
		size_t skip = 0, avail = 0;
		int r = http_body_next(&c->dec, (const uint8_t *)p, len, &skip, &avail);
		if (r == HTTP_PARSE_ERROR) {
			fail_req(c, false, c->dec.error ? c->dec.error : "bad response body framing", 0);
			return -1;
		}
		if (r == HTTP_BODY_DATA) {
			body_data(c, p + skip, avail);
			http_body_consume(&c->dec, avail);
			skip += avail;
		}
		p += skip;
		len -= skip;
		if (r == HTTP_PARSE_OK)
			break;
	}
	if (!http_body_done(&c->dec))
		return 0;
	/* Bytes after the response: the server answered more than asked. */
	if (len > 0)
		c->resp.close = true;
	return 1;
}

/* A complete head is at the start of rbuf: sets up the body decoder and
 * feeds it what followed the head. Same returns as body_feed. */
static int head_done(struct s3b_conn *c)
{
	struct s3b_run *run = c->run;
	struct bench_s3_resp *r = &c->resp;
	c->have_head = true;
	bool ok = r->status / 100 == 2;
	if (run->kind == K_LIST && ok)
		c->keep_max = S3B_LIST_BODY_MAX;
	else if (!ok || run->kind == K_BUCKET)
		c->keep_max = S3B_ERR_BODY_MAX;
	if (r->status == 204 || r->status == 304)
		http_body_init(&c->dec, 0, 0);
	else if (r->chunked)
		http_body_init(&c->dec, -1, 0);
	else if (r->content_length >= 0)
		http_body_init(&c->dec, r->content_length, 0);
	else
		c->until_eof = true;
	if (run->kind == K_GET && ok && r->content_length >= 0 && r->content_length != run->size)
		c->bad_body = true;
	size_t rest = c->rlen - r->head_len;
	c->rlen = 0;
	if (!c->until_eof && http_body_done(&c->dec)) {
		if (rest > 0)
			c->resp.close = true; /* bytes nobody asked for */
		return 1;
	}
	return body_feed(c, c->rbuf + r->head_len, rest);
}

static void do_read(struct s3b_conn *c)
{
	for (int i = 0; i < S3B_READS_PER_EVENT; i++) {
		char *dst = c->have_head ? c->rbuf : c->rbuf + c->rlen;
		size_t room = c->have_head ? c->rcap : c->rcap - c->rlen;
		ssize_t n = recv(c->io.fd, dst, room, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			int e = n < 0 ? errno : 0;
			if (n == 0 && c->have_head && c->until_eof) {
				complete(c);
				return;
			}
			if (!e)
				e = c->wr_err;
			fail_req(c, true,
				 c->got_any ? "connection closed in the middle of the response"
					    : "connection closed before a response",
				 e);
			return;
		}
		c->got_any = true;
		int r;
		if (c->have_head) {
			r = body_feed(c, c->rbuf, (size_t)n);
		} else {
			c->rlen += (size_t)n;
			int pr;
			for (;;) {
				pr = bench_s3_parse_resp(c->rbuf, c->rlen, &c->resp);
				if (pr || c->resp.status >= 200)
					break;
				/* 1xx (100 Continue unasked): skip it. */
				memmove(c->rbuf, c->rbuf + c->resp.head_len, c->rlen - c->resp.head_len);
				c->rlen -= c->resp.head_len;
			}
			if (pr == -SILT_EAGAIN)
				continue;
			if (pr) {
				fail_req(c, false,
					 pr == -SILT_ETOOBIG ? "response head over 64 KiB" : "malformed response head",
					 0);
				return;
			}
			r = head_done(c);
		}
		if (r < 0)
			return;
		if (r > 0) {
			complete(c);
			return;
		}
	}
}

static void do_write(struct s3b_conn *c)
{
	struct s3b_run *run = c->run;
	for (int i = 0; i < 1024 && !c->sent; i++) {
		struct iovec iov[2];
		int niov = 0;
		if (c->req_off < c->req.len)
			iov[niov++] = (struct iovec){ c->req.p + c->req_off, c->req.len - c->req_off };
		if (c->body_off < c->body_len)
			iov[niov++] = (struct iovec){ (void *)(uintptr_t)(run->payload + c->body_off),
						      (size_t)(c->body_len - c->body_off) };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
		ssize_t n = sendmsg(c->io.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			/* The server may have answered and closed (an early
			 * error): read what it said before judging. */
			c->wr_err = errno;
			set_interest(c, LOOP_READ);
			return;
		}
		size_t hn = SILT_MIN((size_t)n, c->req.len - c->req_off);
		c->req_off += hn;
		c->body_off += (int64_t)((size_t)n - hn);
		if (c->req_off == c->req.len && c->body_off == c->body_len) {
			c->sent = true;
			set_interest(c, LOOP_READ);
		}
	}
}

static void on_io(struct loop_io *io, int events)
{
	struct s3b_conn *c = io->data;
	if (c->io.fd < 0 || c->st == C_IDLE)
		return;
	if (c->st == C_CONNECTING) {
		if (!(events & LOOP_WRITE))
			return;
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			char what[300];
			snprintf(what, sizeof(what), "connect %s", c->run->o->s3_authority);
			fail_req(c, true, what, err);
			return;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getpeername(c->io.fd, (struct sockaddr *)&ss, &sl) < 0)
			return; /* a stale event of an older socket: still connecting */
		c->st = C_BUSY;
		set_interest(c, LOOP_READ | LOOP_WRITE);
		if (c->st != C_BUSY)
			return;
		events = LOOP_WRITE;
	}
	int64_t idx = c->idx;
	int fd = c->io.fd;
	if ((events & LOOP_WRITE) && !c->sent && !c->wr_err)
		do_write(c);
	/* do_write may have ended the request (epoll error path). */
	if (c->io.fd != fd || c->idx != idx || c->st != C_BUSY)
		return;
	if (events & LOOP_READ)
		do_read(c);
}

static void on_cap(struct loop_timer *t)
{
	struct s3b_run *run = t->data;
	run->stopped = true;
	run->capped = true;
	loop_stop(run->loop);
}

static void on_progress(struct loop_timer *t)
{
	struct s3b_run *run = t->data;
	double secs = (double)(bench_now_ns() - run->t_start) / 1e9;
	if (run->kind == K_LIST)
		fprintf(stderr, "silt bench: s3 %s: %" PRId64 " pages, %" PRId64 " keys in %.0f s\n", run->name,
			run->pages, run->keys, secs);
	else
		fprintf(stderr, "silt bench: s3 %s: %" PRId64 "/%" PRId64 " done (%" PRId64 " failed) in %.0f s\n",
			run->name, run->ok, run->n, run->failures, secs);
	loop_timer_start(run->loop, t, S3B_PROGRESS_MS);
}

/* Runs one phase to its end, its cap or its giving up. */
static void run_phase(struct s3b_run *run, int nconns)
{
	run->loop = loop_new();
	run->nconns = nconns;
	run->conns = xcalloc((size_t)nconns, sizeof(*run->conns));
	size_t rcap = nconns <= 64 ? 256 * 1024 : 64 * 1024;
	wbuf_init(&run->scratch, 1024, 64 * 1024);
	for (int i = 0; i < nconns; i++) {
		struct s3b_conn *c = &run->conns[i];
		c->run = run;
		c->io.fd = -1;
		c->io.cb = on_io;
		c->io.data = c;
		c->idx = -1;
		c->rcap = rcap;
		c->rbuf = xmalloc(rcap);
		wbuf_init(&c->req, 1024, 64 * 1024);
		wbuf_init(&c->keep, 0, S3B_LIST_BODY_MAX + 1);
	}
	loop_timer_init(&run->cap_timer, on_cap, run);
	loop_timer_init(&run->progress_timer, on_progress, run);
	int64_t cpu0 = cpu_ns();
	run->t_start = bench_now_ns();
	run->t_last = run->t_start;
	int64_t left_ms = (run->deadline_ns - run->t_start) / 1000000;
	if (left_ms <= 0) {
		run->stopped = run->capped = true;
	} else {
		loop_timer_start(run->loop, &run->cap_timer, left_ms);
		loop_timer_start(run->loop, &run->progress_timer, S3B_PROGRESS_MS);
		for (int i = 0; i < nconns; i++)
			issue_next(&run->conns[i]);
		loop_run(run->loop);
	}
	int64_t wall = bench_now_ns() - run->t_start;
	if (wall > 0)
		run->cpu_pct = 100.0 * (double)(cpu_ns() - cpu0) / (double)wall;
	if (run->ok == 0)
		run->t_last = bench_now_ns();
	for (int i = 0; i < nconns; i++) {
		struct s3b_conn *c = &run->conns[i];
		conn_close(c);
		free(c->rbuf);
		wbuf_destroy(&c->req);
		wbuf_destroy(&c->keep);
	}
	free(run->conns);
	run->conns = NULL;
	wbuf_destroy(&run->scratch);
	loop_timer_stop(run->loop, &run->cap_timer);
	loop_timer_stop(run->loop, &run->progress_timer);
	loop_free(run->loop);
	run->loop = NULL;
}

static bool run_incomplete(const struct s3b_run *run)
{
	if (run->kind == K_LIST)
		return run->capped || run->failures > 0 || (!run->list_end && run->keys < run->n);
	return run->ok < run->n || run->capped;
}

static void report(const struct s3b_run *run, int nconns)
{
	const struct bench_opts *o = run->o;
	struct bench_result r = { .lat = run->lat, .nlat = run->nlat };
	bench_lat_sort(&r);
	double secs = (double)(run->t_last - run->t_start) / 1e9;
	double p50 = (double)bench_quantile(&r, 0.50) / 1e6, p99 = (double)bench_quantile(&r, 0.99) / 1e6;
	double pmax = (double)bench_quantile(&r, 1.0) / 1e6;
	bool inc = run_incomplete(run);
	const char *tag = !inc ? ""
			  : run->capped ? " (INCOMPLETE: duration cap)"
			  : run->failures ? " (FAILURES)"
					  : " (INCOMPLETE)";
	if (run->kind == K_LIST) {
		double pps = secs > 0 ? (double)run->pages / secs : 0;
		double kps = secs > 0 ? (double)run->keys / secs : 0;
		printf("s3 list: %" PRId64 " pages, %" PRId64 " keys (max-keys %" PRId64 ") in %.3f s%s\n", run->pages,
		       run->keys, o->max_keys, secs, tag);
		printf("  %.1f pages/s  %.0f keys/s  page latency p50 %.3f ms  p99 %.3f ms  max %.3f ms  failures "
		       "%" PRId64 "  client CPU %.0f%%\n",
		       pps, kps, p50, p99, pmax, run->failures, run->cpu_pct);
		printf("RESULT target=s3 mode=list max_keys=%" PRId64 " pages=%" PRId64 " keys=%" PRId64
		       " secs=%.3f pages_per_s=%.1f keys_per_s=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f"
		       " failures=%" PRId64 " complete=%d client_cpu_pct=%.0f\n",
		       o->max_keys, run->pages, run->keys, secs, pps, kps, p50, p99, pmax, run->failures, inc ? 0 : 1,
		       run->cpu_pct);
	} else {
		double ops = secs > 0 ? (double)run->ok / secs : 0;
		double mbps = secs > 0 ? (double)run->bytes / secs / 1e6 : 0;
		printf("s3 %s: %" PRId64 " of %" PRId64 " objects x %" PRId64 " B, %d connections, %.3f s%s\n",
		       run->name, run->ok, run->n, run->size, nconns, secs, tag);
		printf("  %.1f ops/s  %.2f MB/s  latency p50 %.3f ms  p99 %.3f ms  max %.3f ms  failures %" PRId64
		       "  client CPU %.0f%%\n",
		       ops, mbps, p50, p99, pmax, run->failures, run->cpu_pct);
		printf("RESULT target=s3 mode=%s size=%" PRId64 " concurrency=%d objects=%" PRId64 " bytes=%" PRId64
		       " secs=%.3f ops_per_s=%.1f mb_per_s=%.2f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f"
		       " failures=%" PRId64 " complete=%d client_cpu_pct=%.0f\n",
		       run->name, run->size, nconns, run->ok, run->bytes, secs, ops, mbps, p50, p99, pmax,
		       run->failures, inc ? 0 : 1, run->cpu_pct);
	}
	fflush(stdout);
}

/* One phase: returns true when it completed without failures. */
static bool phase(const struct bench_opts *o, const struct addrinfo *ai, const uint8_t *payload,
		  int64_t deadline_ns, enum s3b_kind kind, int64_t n, int nconns, bool print)
{
	struct s3b_run run = {
		.o = o,
		.ai = ai,
		.kind = kind,
		.name = kind_name(kind),
		.payload = payload,
		.size = kind == K_BUCKET ? 0 : o->size,
		.n = n,
		.deadline_ns = deadline_ns,
		.amz_sec = -1,
	};
	if (kind == K_LIST) {
		run.pages_cap = (n + o->max_keys - 1) / o->max_keys + 1;
		run.lat_cap = run.pages_cap;
		nconns = 1;
	} else {
		run.lat_cap = n;
		nconns = (int)SILT_MIN((int64_t)nconns, n);
	}
	run.lat = xmalloc((size_t)SILT_MAX(run.lat_cap, 1) * sizeof(int64_t));
	if (print) {
		if (kind == K_LIST)
			printf("s3 list: %s/%s prefix '%s', %" PRId64 " keys per page, cap %" PRId64 " s\n",
			       o->endpoint, o->bucket, o->prefix, o->max_keys, o->duration_s);
		else
			printf("s3 %s: %s/%s/%s*, %" PRId64 " x %" PRId64 " B, %d connections, %s, cap %" PRId64
			       " s\n",
			       run.name, o->endpoint, o->bucket, o->prefix, n, run.size, nconns,
			       o->unsigned_req ? "unsigned" : "SigV4 UNSIGNED-PAYLOAD", o->duration_s);
		fflush(stdout);
	}
	run_phase(&run, nconns);
	bool good = !run_incomplete(&run) && run.failures == 0;
	if (kind == K_BUCKET) {
		if (good)
			printf("bucket %s %s\n", o->bucket, run.bucket_existed ? "exists" : "created");
		else
			fprintf(stderr, "silt bench: could not create bucket %s\n", o->bucket);
	} else {
		report(&run, nconns);
	}
	free(run.lat);
	free(run.token);
	bench_s3_signer_destroy(&run.signer);
	return good;
}

int bench_s3_run(const struct bench_opts *o)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	int grc = getaddrinfo(o->s3_host, o->s3_port, &hints, &ai);
	if (grc) {
		fprintf(stderr, "silt bench: %s: %s\n", o->s3_authority, gai_strerror(grc));
		return BENCH_EXIT_FAIL;
	}
	/* One descriptor per connection: lift the soft limit as far as the
	 * hard one allows rather than fail at the 1024th. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
	    rl.rlim_cur < (rlim_t)o->concurrency + 64) {
		rl.rlim_cur = SILT_MIN(rl.rlim_max, (rlim_t)o->concurrency + 64);
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	int64_t deadline = bench_now_ns() + o->duration_s * 1000000000LL;
	bool good = true;
	uint8_t *payload = bench_payload_new((size_t)o->size);
	int nc = (int)o->concurrency;
	if (o->create_bucket)
		good = phase(o, ai, payload, deadline, K_BUCKET, 1, 1, false);
	if (good && o->populate)
		good = phase(o, ai, payload, deadline, K_POPULATE, o->populate, nc, true);
	if (good && (o->s3_mode_given || !o->populate)) {
		switch (o->s3_mode) {
		case BENCH_S3_PUT:
			good = phase(o, ai, payload, deadline, K_PUT, o->objects, nc, true);
			break;
		case BENCH_S3_GET:
			good = phase(o, ai, payload, deadline, K_GET, o->objects, nc, true);
			break;
		case BENCH_S3_BOTH:
			good = phase(o, ai, payload, deadline, K_PUT, o->objects, nc, true);
			/* The GETs read what the PUTs wrote; after a failed put
			 * phase they would only measure errors. */
			if (good)
				good = phase(o, ai, payload, deadline, K_GET, o->objects, nc, true);
			break;
		case BENCH_S3_LIST:
			good = phase(o, ai, payload, deadline, K_LIST, o->objects, 1, true);
			break;
		}
	}
	free(payload);
	freeaddrinfo(ai);
	return good ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
}
