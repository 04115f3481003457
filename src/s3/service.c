/* service.c - the S3 API service: HTTP glue, routing, SigV4, error
 * documents and the request-body pipeline (see service.h). */
#include "core/platform.h"
#include "s3/service.h"
#include "core/log.h"
#include "core/md5mb.h"
#include "core/util.h"
#include "s3/commit.h"
#include "s3/route.h"

#include <stdarg.h>
#include <time.h>

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* ---- small helpers ---------------------------------------------------- */

const char *s3_header(struct s3req *r, const char *name)
{
	const struct http_header *h = http_header_find(&r->h->h, name, NULL);
	if (!h)
		return NULL;
	return http_req_strndup(r->h, h->value.base, h->value.len);
}

const char *s3_query(struct s3req *r, const char *name, bool *present)
{
	struct http_view v;
	if (present)
		*present = false;
	if (!r->h->h.has_query || !http_query_param(r->h->h.query, name, &v))
		return NULL;
	if (present)
		*present = true;
	char *out = http_req_alloc(r->h, v.len + 1);
	/* Query values may carry '+' for spaces (form encoding). */
	char *tmp = http_req_alloc(r->h, v.len + 1);
	for (size_t i = 0; i < v.len; i++)
		tmp[i] = v.base[i] == '+' ? ' ' : v.base[i];
	ssize_t n = http_pct_decode(tmp, v.len, out);
	if (n < 0)
		return NULL;
	out[n] = '\0';
	return out;
}

void s3_http_date(int64_t ms, char out[40])
{
	fmt_http_date(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000), out);
}

void s3_iso_date(int64_t ms, char out[40])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%03dZ", (int)(ms % 1000));
}

static void common_headers(struct s3req *r)
{
	http_resp_header(r->h, "x-amz-request-id", r->id);
	http_resp_header(r->h, "x-amz-id-2", r->id);
}

/* ---- errors and responses --------------------------------------------- */

static void finish(struct s3req *r, int status)
{
	r->answered = true;
	r->status = status;
}

void s3_error(struct s3req *r, int status, const char *code, const char *message)
{
	if (r->answered)
		return;
	struct wbuf b;
	struct s3_xw w;
	wbuf_init(&b, 512, 1 << 20);
	s3_xw_init(&w, &b);
	s3_xw_decl(&w);
	s3_xw_open(&w, "Error");
	s3_xw_elem(&w, "Code", code);
	s3_xw_elem(&w, "Message", message);
	if (r->resource)
		s3_xw_elem(&w, "Resource", r->resource);
	if (r->bucket)
		s3_xw_elem(&w, "BucketName", r->bucket);
	if (r->key)
		s3_xw_elem(&w, "Key", r->key);
	s3_xw_elem(&w, "RequestId", r->id);
	s3_xw_close(&w, "Error");
	common_headers(r);
	http_resp_header(r->h, "Content-Type", "application/xml");
	if (status >= 500)
		log_warn("s3", "%s %s %s: %d %s: %s", r->h->peer, http_method_name(r->h->h.m),
			 r->resource ? r->resource : "/", status, code, message);
	else
		log_debug("s3", "%s %s %s: %d %s: %s", r->h->peer, http_method_name(r->h->h.m),
			  r->resource ? r->resource : "/", status, code, message);
	finish(r, status);
	http_respond(r->h, status, b.p, b.len);
	wbuf_destroy(&b);
}

void s3_error_meta(struct s3req *r, int err)
{
	if (err <= -S3META_EBASE && err > -S3META_ELAST) {
		const struct s3meta_errinfo *ei = s3meta_errinfo(err);
		s3_error(r, ei->http_status, ei->code, ei->message);
		return;
	}
	s3_error_internal(r, "metadata", err);
}

void s3_error_internal(struct s3req *r, const char *what, int err)
{
	log_error("s3", "%s %s: %s failed: %s", r->id, r->resource ? r->resource : "/", what,
		  silt_strerror(err));
	s3_error(r, 500, "InternalError", "We encountered an internal error. Please try again.");
}

void s3_xml_begin(struct s3req *r, struct wbuf *b, struct s3_xw *w, const char *root)
{
	(void)r;
	wbuf_init(b, 4096, 256u << 20);
	s3_xw_init(w, b);
	s3_xw_decl(w);
	s3_xw_open_ns(w, root, S3_NS);
}

void s3_respond_xml(struct s3req *r, int status, struct wbuf *b)
{
	if (r->answered) {
		wbuf_destroy(b);
		return;
	}
	if (b->err) {
		wbuf_destroy(b);
		s3_error_internal(r, "response encoding", -SILT_ETOOBIG);
		return;
	}
	common_headers(r);
	http_resp_header(r->h, "Content-Type", "application/xml");
	finish(r, status);
	http_respond(r->h, status, b->p, b->len);
	wbuf_destroy(b);
}

void s3_respond_empty(struct s3req *r, int status)
{
	if (r->answered)
		return;
	common_headers(r);
	finish(r, status);
	http_respond(r->h, status, NULL, 0);
}

int s3_respond_stream(struct s3req *r, int status, int64_t len)
{
	if (r->answered)
		return -EALREADY;
	common_headers(r);
	finish(r, status);
	return http_respond_stream(r->h, status, len);
}

int s3_respond_ref(struct s3req *r, int status, const void *body, size_t len)
{
	if (r->answered)
		return -EALREADY;
	common_headers(r);
	finish(r, status);
	return http_respond_ref(r->h, status, body, len, NULL, NULL);
}

/* ---- conditional requests and copy sources ------------------------------ */

bool s3_parse_http_date(const char *s, int64_t *ms)
{
	/* RFC 7231 7.1.1.1: IMF-fixdate, and the obsolete RFC 850 and asctime
	 * forms a recipient must still accept. */
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT",
		"%A, %d-%b-%y %H:%M:%S GMT",
		"%a %b %e %H:%M:%S %Y",
	};
	if (!s)
		return false;
	for (size_t i = 0; i < SILT_ARRAY_LEN(fmts); i++) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(s, fmts[i], &tm);
		if (!end || *end)
			continue;
		time_t t = timegm(&tm);
		if (t == (time_t)-1)
			continue;
		*ms = (int64_t)t * 1000;
		return true;
	}
	return false;
}

/* Whether an If-Match / If-None-Match list names etag (unquoted): entries
 * are comma-separated, quoted or not, "*" matches any object. */
static bool etag_list_matches(const char *list, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *start = p;
		while (*p && *p != ',')
			p++;
		const char *end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end - start >= 2 && start[0] == 'W' && start[1] == '/')
			start += 2;
		if (end - start >= 2 && start[0] == '"' && end[-1] == '"') {
			start++;
			end--;
		}
		if (end - start == 1 && *start == '*')
			return true;
		if ((size_t)(end - start) == elen && memcmp(start, etag, elen) == 0)
			return true;
	}
	return false;
}

static const char *cond_header(struct s3req *r, const char *prefix, const char *name)
{
	if (!*prefix)
		return s3_header(r, name);
	char full[64];
	size_t pl = strlen(prefix), nl = strlen(name);
	if (pl + nl >= sizeof(full))
		return NULL;
	memcpy(full, prefix, pl);
	memcpy(full + pl, name, nl + 1);
	return s3_header(r, full);
}

int s3_eval_conditions(struct s3req *r, const char *prefix, const char *etag, int64_t mtime_ms)
{
	const char *im = cond_header(r, prefix, "if-match");
	const char *inm = cond_header(r, prefix, "if-none-match");
	const char *ims = cond_header(r, prefix, "if-modified-since");
	const char *ius = cond_header(r, prefix, "if-unmodified-since");
	/* HTTP dates have whole seconds. */
	int64_t mtime_s = mtime_ms / 1000;
	int64_t t;
	/* S3 (like RFC 7232 6) looks at If-Unmodified-Since only without
	 * If-Match, and at If-Modified-Since only without If-None-Match. */
	if (im) {
		if (!etag_list_matches(im, etag))
			return 412;
	} else if (ius && s3_parse_http_date(ius, &t) && mtime_s > t / 1000) {
		return 412;
	}
	if (inm) {
		if (etag_list_matches(inm, etag))
			return 304;
	} else if (ims && s3_parse_http_date(ims, &t) && mtime_s <= t / 1000) {
		return 304;
	}
	return 0;
}

bool s3_copy_source(struct s3req *r, struct s3meta_bucket *sb, struct s3meta_obj *src, const char **src_key)
{
	memset(src, 0, sizeof(*src));
	const char *cs = s3_header(r, "x-amz-copy-source");
	if (!cs || !*cs) {
		s3_error(r, 400, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
		return false;
	}
	/* The value is URL-encoded, so a '?' can only start the query. */
	size_t plen = strcspn(cs, "?");
	const char *vid = NULL;
	if (cs[plen] == '?') {
		const char *q = cs + plen + 1;
		if (strncmp(q, "versionId=", 10) != 0) {
			s3_error(r, 400, "InvalidArgument", "Unsupported copy source parameter.");
			return false;
		}
		char *v = http_req_alloc(r->h, strlen(q + 10) + 1);
		ssize_t vn = http_pct_decode(q + 10, strlen(q + 10), v);
		if (vn <= 0) {
			s3_error(r, 400, "InvalidArgument", "Invalid version id specified");
			return false;
		}
		v[vn] = '\0';
		vid = v;
	}
	char *path = http_req_alloc(r->h, plen + 1);
	ssize_t n = http_pct_decode(cs, plen, path);
	if (n < 0 || memchr(path, '\0', (size_t)n)) {
		s3_error(r, 400, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
		return false;
	}
	path[n] = '\0';
	char *b = path[0] == '/' ? path + 1 : path;
	char *slash = strchr(b, '/');
	if (!slash || slash == b || !slash[1]) {
		s3_error(r, 400, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
		return false;
	}
	*slash = '\0';
	const char *key = slash + 1;
	*src_key = key;
	int rc = s3meta_bucket_head(r->svc->meta, b, sb);
	if (rc != 0) {
		s3_error_meta(r, rc);
		return false;
	}
	if (strcmp(sb->owner, r->user) != 0) {
		s3_error(r, 403, "AccessDenied", "Access Denied");
		return false;
	}
	rc = s3meta_object_get(r->svc->meta, b, key, vid, src);
	if (rc != 0) {
		if (rc == -S3META_EMETHODNOTALLOWED && src->delete_marker)
			s3_error(r, 400, "InvalidRequest",
				 "The source of a copy request may not specifically refer to a delete marker by version id.");
		else
			s3_error_meta(r, rc);
		s3meta_obj_destroy(src);
		return false;
	}
	int c = s3_eval_conditions(r, "x-amz-copy-source-", src->etag, src->mtime_ms);
	if (c != 0) {
		s3_error(r, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
		s3meta_obj_destroy(src);
		return false;
	}
	return true;
}

/* ---- the body pipeline -------------------------------------------------- */

struct s3body {
	int64_t max;
	int64_t got;
	int64_t declared;            /* payload length announced, -1 unknown */
	bool chunked, chunked_done, failed, want_digests, collect;
	struct s3_chunked dec;
	struct md5mb_ctx md5;
	struct s3_cksum sha256, ck;
	bool have_md5, have_sha256, have_ck;
	enum s3_cksum_alg alg;
	const char *ck_expected;     /* header value (b64), if sent */
	bool ck_from_trailer;
	struct wbuf buf;             /* collect mode */
	s3body_data_fn on_data;
	s3body_end_fn on_end;
	/* Batched MD5 (stream mode; see "batched MD5" below). q NULL: the MD5
	 * is computed as bytes arrive and they go straight to on_data. */
	struct s3_md5q *q;
	uint8_t *stage;
	size_t stage_cap;            /* allocated */
	size_t stage_chunk;          /* a data-node chunk: what on_data gets */
	size_t stage_limit;          /* a chunk plus slack */
	size_t stage_fill;           /* staged bytes */
	size_t stage_hashed;         /* of which the MD5 has seen this many */
	size_t stage_passed;         /* of which on_data got this many (0 or a chunk) */
	struct s3body *q_next, **q_pprev; /* in q while stage_hashed < stage_fill */
	/* The body ended and its end (last bytes, digests, on_end) waits for
	 * the loop's idle hook, to be hashed with the other bodies that ended
	 * in the same iteration: in q->ready. */
	struct s3req *r;
	struct s3body *e_next, **e_pprev;
};

/* ---- batched MD5 -----------------------------------------------------------
 *
 * MD5 (the ETag) is latency-bound: one stream hashes at ~600 MB/s per core
 * however wide the CPU, and a stream cannot be split. Several streams can
 * share the core, though (core/md5mb: up to eight streams in the lanes of
 * one vector register), so a streamed body's MD5 is deferred and batched
 * with the other uploads on the same loop thread.
 *
 * A body copies its payload into a stage (the copy the data node would
 * otherwise make into its own chunk buffer) and joins its loop's queue of
 * bodies with bytes the MD5 has not seen. Once per loop iteration, after
 * the iteration's reads (the HTTP layer reads at most about one buffer per
 * connection per iteration, so the uploads progress side by side), a loop
 * idle hook flushes the queue: every queued body's unhashed bytes go
 * through md5mb_update_jobs together, pieces of similar size that keep the
 * lanes busy.
 *
 * The data node still gets whole chunks straight from the stage (appended
 * without a copy there) as soon as one is complete: the stage holds a
 * chunk plus slack for the bytes that arrive before the next flush, which
 * then moves those to the front. Only if the slack runs out (a body read
 * more than the slack in one iteration) is the queue flushed early. At the
 * end of a body, the rest of its end (the last bytes to on_data, the
 * digests and their checks, on_end) waits for the idle hook too, so that
 * small bodies that arrived whole in the same iteration -- a loop's many
 * small PUTs -- share the lanes instead of each hashing alone; the hook
 * flushes the queue and then ends them one by one. The digests are still
 * final before on_end: an object becomes visible only after its MD5 (and
 * Content-MD5) checked out.
 *
 * The queue is per loop (bodies of one loop only, so no locking) and owned
 * by the service rather than the thread: a request can be freed on the
 * stopping thread after its loop exited. */
struct s3_md5q {
	struct loop *loop; /* the loop that claimed this queue */
	struct loop_hook hook;
	struct s3body *head;
	struct s3body *ready; /* ended bodies whose end the hook runs */
};

#define MD5Q_BATCH 64

static void md5q_flush(struct s3_md5q *q);
static void body_end_run(struct s3req *r, struct s3body *b);

static void ready_unlink(struct s3body *b)
{
	if (!b->e_pprev)
		return;
	*b->e_pprev = b->e_next;
	if (b->e_next)
		b->e_next->e_pprev = b->e_pprev;
	b->e_next = NULL;
	b->e_pprev = NULL;
}

static void md5q_hook(struct loop_hook *h)
{
	struct s3_md5q *q = h->data;
	if (q->head)
		md5q_flush(q);
	/* Each end may answer its request, which may free that body (and
	 * only that body): take it off the list first. */
	while (q->ready) {
		struct s3body *b = q->ready;
		ready_unlink(b);
		body_end_run(b->r, b);
	}
}

/* This loop's queue, claiming a free one on first use (and hooking it into
 * the loop); NULL if none is left (then the body hashes as bytes arrive). */
static struct s3_md5q *md5q_of(struct s3req *r)
{
	struct s3svc *s = r->svc;
	struct loop *l = r->h->loop;
	for (int i = 0; i < s->nmd5q; i++) {
		struct s3_md5q *q = &s->md5q[i];
		struct loop *cur = __atomic_load_n(&q->loop, __ATOMIC_ACQUIRE);
		if (cur == NULL &&
		    __atomic_compare_exchange_n(&q->loop, &cur, l, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			q->hook.fn = md5q_hook;
			q->hook.data = q;
			loop_hook_add(l, &q->hook);
			return q;
		}
		if (cur == l)
			return q;
	}
	return NULL;
}

static void md5q_unlink(struct s3body *b)
{
	if (!b->q_pprev)
		return;
	*b->q_pprev = b->q_next;
	if (b->q_next)
		b->q_next->q_pprev = b->q_pprev;
	b->q_next = NULL;
	b->q_pprev = NULL;
}

static void md5q_link(struct s3body *b)
{
	if (b->q_pprev)
		return;
	b->q_next = b->q->head;
	if (b->q_next)
		b->q_next->q_pprev = &b->q_next;
	b->q->head = b;
	b->q_pprev = &b->q->head;
}

/* The MD5 has seen every staged byte: drop the chunk already handed to
 * the data node, keeping what arrived after it. Not queued bodies only. */
static void stage_settle(struct s3body *b)
{
	b->stage_hashed = b->stage_fill;
	if (b->stage_passed) {
		b->stage_fill -= b->stage_passed;
		memmove(b->stage, b->stage + b->stage_passed, b->stage_fill);
		b->stage_hashed = b->stage_fill;
		b->stage_passed = 0;
	}
}

/* Hashes every queued body's unhashed staged bytes, lane-parallel. */
static void md5q_flush(struct s3_md5q *q)
{
	struct md5mb_job jobs[MD5Q_BATCH];
	struct s3body *bs[MD5Q_BATCH];
	while (q->head) {
		size_t n = 0;
		while (q->head && n < MD5Q_BATCH) {
			struct s3body *b = q->head;
			md5q_unlink(b);
			jobs[n] = (struct md5mb_job){ &b->md5, b->stage + b->stage_hashed,
						      b->stage_fill - b->stage_hashed };
			bs[n++] = b;
		}
		md5mb_update_jobs(jobs, n);
		for (size_t i = 0; i < n; i++)
			stage_settle(bs[i]);
	}
}

/* Makes room at the end of the stage: grows it up to the limit (at once
 * to the body's size, up to the limit, when that is known), or when the
 * slack is used up before the idle hook ran, flushes the queue early. */
static void stage_room(struct s3body *b)
{
	if (b->stage_fill < b->stage_cap)
		return;
	if (b->stage_cap < b->stage_limit) {
		size_t want = b->stage_cap * 2;
		if (b->stage_cap == 0)
			want = b->declared > 0 ? (size_t)SILT_MIN((uint64_t)b->declared, (uint64_t)b->stage_limit)
					       : (size_t)64 * 1024;
		b->stage_cap = SILT_MIN(SILT_MAX(want, b->stage_fill + 1), b->stage_limit);
		b->stage = xrealloc(b->stage, b->stage_cap);
		return;
	}
	md5q_flush(b->q);
	stage_settle(b);
}

/* Stages n bytes at p, which may already be in place at the end of the
 * stage (read there through body_buf). */
static int body_stage(struct s3req *r, struct s3body *b, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t k;
		if (b->stage && p == b->stage + b->stage_fill && n <= b->stage_cap - b->stage_fill) {
			k = n;
		} else {
			stage_room(b);
			k = SILT_MIN(n, b->stage_cap - b->stage_fill);
			memcpy(b->stage + b->stage_fill, p, k);
		}
		b->stage_fill += k;
		p += k;
		n -= k;
		md5q_link(b);
		if (!b->stage_passed && b->stage_fill >= b->stage_chunk) {
			b->stage_passed = b->stage_chunk;
			if (b->on_data(r, b->stage, b->stage_chunk) != 0)
				return -1;
		}
	}
	return 0;
}

/* End of body: the MD5 sees the last staged bytes (with whatever the other
 * uploads on this loop have staged) and on_data gets them. */
static int stage_finish(struct s3req *r, struct s3body *b)
{
	if (b->stage_hashed < b->stage_fill)
		md5q_flush(b->q);
	stage_settle(b);
	size_t n = b->stage_fill;
	b->stage_fill = b->stage_hashed = 0;
	return n ? b->on_data(r, b->stage, n) : 0;
}

static void body_free(struct s3body *b)
{
	if (!b)
		return;
	if (b->chunked)
		s3_chunked_destroy(&b->dec);
	md5q_unlink(b);
	ready_unlink(b);
	free(b->stage);
	if (b->have_sha256)
		s3_cksum_destroy(&b->sha256);
	if (b->have_ck)
		s3_cksum_destroy(&b->ck);
	wbuf_destroy(&b->buf);
	free(b);
}

/* Which x-amz-checksum the client sent (header) or announced (trailer). */
static void body_pick_checksum(struct s3req *r, struct s3body *b)
{
	const struct http_head *h = &r->h->h;
	for (int i = 0; i < h->nheaders; i++) {
		enum s3_cksum_alg a = s3_cksum_alg_from_header(h->headers[i].name.base, h->headers[i].name.len);
		if (a != S3_CKSUM_NONE) {
			b->alg = a;
			b->ck_expected = http_req_strndup(r->h, h->headers[i].value.base, h->headers[i].value.len);
			return;
		}
	}
	const char *tr = s3_header(r, "x-amz-trailer");
	if (tr) {
		enum s3_cksum_alg a = s3_cksum_alg_from_header(tr, strlen(tr));
		if (a != S3_CKSUM_NONE) {
			b->alg = a;
			b->ck_from_trailer = true;
			return;
		}
	}
	const char *sdk = s3_header(r, "x-amz-sdk-checksum-algorithm");
	if (sdk)
		b->alg = s3_cksum_alg_from_name(sdk, strlen(sdk));
}

static void body_start(struct s3req *r, int64_t max, bool want_digests, bool collect, s3body_data_fn on_data,
		       s3body_end_fn on_end)
{
	struct s3body *b = xcalloc(1, sizeof(*b));
	r->body = b;
	b->r = r;
	b->max = max;
	b->want_digests = want_digests;
	b->collect = collect;
	b->on_data = on_data;
	b->on_end = on_end;
	wbuf_init(&b->buf, 0, collect ? (size_t)max : 0);
	int64_t declared = r->h->h.content_length;
	if (s3_payload_is_chunked(r->auth.payload)) {
		struct s3_chunked_cfg cfg = {
			.mode = r->auth.payload,
			.signing_key = r->auth.signing_key,
			.amz_date = r->auth.amz_date,
			.scope = r->auth.scope,
			.seed_sig = r->auth.seed_sig,
			.decoded_length = r->auth.decoded_length,
		};
		if (s3_chunked_init(&b->dec, &cfg) != 0) {
			s3_error(r, 400, "InvalidRequest", "Cannot decode an aws-chunked body for this request.");
			b->failed = true;
			return;
		}
		b->chunked = true;
		declared = r->auth.decoded_length;
	}
	b->declared = declared;
	if (declared > max) {
		s3_error(r, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.");
		b->failed = true;
		return;
	}
	/* Content-MD5 always covers the body: a collected body is checked
	 * against it too. */
	if (want_digests || http_header_find(&r->h->h, "Content-MD5", NULL)) {
		md5mb_init(&b->md5);
		b->have_md5 = true;
		if (!collect && r->svc->stage_bytes > 0) {
			b->q = md5q_of(r);
			b->stage_chunk = r->svc->stage_bytes;
			b->stage_limit = b->stage_chunk + b->stage_chunk / 2;
		}
	}
	if (want_digests) {
		body_pick_checksum(r, b);
		if (b->alg != S3_CKSUM_NONE && b->alg != S3_CKSUM_MD5 && s3_cksum_init(&b->ck, b->alg) == 0)
			b->have_ck = true;
	}
	if (r->auth.payload == S3_PAYLOAD_SHA256 && !r->auth.presigned) {
		s3_cksum_init(&b->sha256, S3_CKSUM_SHA256);
		b->have_sha256 = true;
	}
}

void s3_body_stream(struct s3req *r, int64_t max, bool want_digests, s3body_data_fn on_data, s3body_end_fn on_end)
{
	body_start(r, max, want_digests, false, on_data, on_end);
}

void s3_body_collect(struct s3req *r, int64_t max, s3body_end_fn on_end)
{
	body_start(r, max, false, true, NULL, on_end);
}

void s3_body_collect_verified(struct s3req *r, int64_t max, s3body_end_fn on_end)
{
	body_start(r, max, true, true, NULL, on_end);
}

const uint8_t *s3_body_bytes(struct s3req *r, size_t *len)
{
	*len = r->body ? r->body->buf.len : 0;
	return r->body && r->body->buf.p ? r->body->buf.p : (const uint8_t *)"";
}

/* One run of decoded payload. */
static int body_deliver(struct s3req *r, struct s3body *b, const uint8_t *p, size_t n)
{
	b->got += (int64_t)n;
	if (b->got > b->max) {
		s3_error(r, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.");
		return -1;
	}
	if (b->have_md5 && !b->q)
		md5mb_update(&b->md5, p, n);
	if (b->have_sha256)
		s3_cksum_update(&b->sha256, p, n);
	if (b->have_ck)
		s3_cksum_update(&b->ck, p, n);
	if (b->collect) {
		wbuf_put(&b->buf, p, n);
		if (b->buf.err) {
			s3_error(r, 400, "EntityTooLarge", "The request body is too large.");
			return -1;
		}
		return 0;
	}
	if (b->q)
		return body_stage(r, b, p, n);
	return b->on_data(r, p, n);
}

static size_t on_body(struct http_req *hr, const void *p, size_t n)
{
	struct s3req *r = hr->udata;
	struct s3body *b = r->body;
	if (!b || b->failed || r->answered)
		return n; /* not wanted: discarded */
	if (!b->chunked) {
		if (body_deliver(r, b, p, n) != 0)
			b->failed = true;
		return n;
	}
	const uint8_t *in = p;
	size_t left = n;
	while (left > 0 && !b->chunked_done) {
		size_t used = 0, outlen = 0;
		const uint8_t *out = NULL;
		int rc = s3_chunked_feed(&b->dec, in, left, &used, &out, &outlen);
		in += used;
		left -= used;
		if (rc == S3_CHUNKED_DATA) {
			if (body_deliver(r, b, out, outlen) != 0) {
				b->failed = true;
				return n;
			}
		} else if (rc == S3_CHUNKED_DONE) {
			b->chunked_done = true;
		} else if (rc == -SILT_EAGAIN) {
			break;
		} else {
			s3_error(r, s3_chunked_err_status(b->dec.err), s3_chunked_err_code(b->dec.err),
				 "The aws-chunked request body is malformed or its signature does not match.");
			b->failed = true;
			return n;
		}
	}
	return n;
}

static bool digest_matches_b64(const char *b64, const uint8_t *digest, size_t dlen)
{
	uint8_t want[S3_CKSUM_MAX_DIGEST];
	size_t wlen;
	if (s3_b64_decode(b64, strlen(b64), want, sizeof(want), &wlen) != 0)
		return false;
	return wlen == dlen && memcmp(want, digest, dlen) == 0;
}

/* The HTTP layer's body_buf: a streamed, batched body without aws-chunked
 * framing is read straight into its stage. */
static uint8_t *on_body_buf(struct http_req *hr, size_t *cap)
{
	struct s3req *r = hr->udata;
	struct s3body *b = r ? r->body : NULL;
	if (!b || !b->q || b->chunked || b->failed || r->answered)
		return NULL;
	stage_room(b);
	*cap = b->stage_cap - b->stage_fill;
	return b->stage + b->stage_fill;
}

static void on_body_end(struct http_req *hr)
{
	struct s3req *r = hr->udata;
	struct s3body *b = r->body;
	if (!b || b->failed || r->answered)
		return;
	if (b->chunked && s3_chunked_finish(&b->dec) != 0) {
		s3_error(r, 400, "IncompleteBody", "The request body terminated unexpectedly.");
		return;
	}
	if (b->q && b->stage_hashed < b->stage_fill) {
		/* Hashed with the others in the idle hook, then ended there. */
		b->e_next = b->q->ready;
		if (b->e_next)
			b->e_next->e_pprev = &b->e_next;
		b->q->ready = b;
		b->e_pprev = &b->q->ready;
		return;
	}
	body_end_run(r, b);
}

/* The end of a complete body: its last staged bytes, the digests and their
 * checks, then on_end. */
static void body_end_run(struct s3req *r, struct s3body *b)
{
	if (b->failed || r->answered)
		return;
	struct s3body_digest d;
	memset(&d, 0, sizeof(d));
	if (b->q && stage_finish(r, b) != 0)
		return;
	d.size = b->got;
	if (b->have_sha256) {
		uint8_t got[32];
		s3_cksum_final(&b->sha256, got);
		if (memcmp(got, r->auth.payload_sha256, 32) != 0) {
			s3_error(r, 400, "XAmzContentSHA256Mismatch",
				 "The provided 'x-amz-content-sha256' header does not match what was computed.");
			return;
		}
	}
	if (b->have_md5) {
		md5mb_final(&b->md5, d.md5);
		char hex[33];
		s3_hex_encode(d.md5, 16, hex);
		snprintf(d.etag, sizeof(d.etag), "\"%s\"", hex);
		const char *cmd5 = s3_header(r, "Content-MD5");
		if (cmd5) {
			uint8_t want[16];
			size_t wl;
			if (s3_b64_decode(cmd5, strlen(cmd5), want, sizeof(want), &wl) != 0 || wl != 16) {
				s3_error(r, 400, "InvalidDigest", "The Content-MD5 you specified was invalid.");
				return;
			}
			if (memcmp(want, d.md5, 16) != 0) {
				s3_error(r, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
				return;
			}
		}
	}
	if (b->have_ck) {
		uint8_t got[S3_CKSUM_MAX_DIGEST];
		size_t glen = s3_cksum_final(&b->ck, got);
		s3_b64_encode(got, glen, d.cksum_b64);
		d.alg = b->alg;
		const char *want = b->ck_expected;
		if (!want && b->ck_from_trailer && b->chunked) {
			uint8_t tdig[S3_CKSUM_MAX_DIGEST];
			size_t tlen;
			enum s3_cksum_alg talg;
			int rc = s3_chunked_trailer_checksum(&b->dec, &talg, tdig, &tlen);
			if (rc == 0 && (talg != b->alg || tlen != glen || memcmp(tdig, got, glen) != 0)) {
				s3_error(r, 400, "BadDigest",
					 "The checksum you specified in the trailer did not match the calculated checksum.");
				return;
			}
			if (rc != 0 && rc != -SILT_ENOENT) {
				s3_error(r, 400, "InvalidRequest", "The trailing checksum is malformed.");
				return;
			}
		} else if (want && !digest_matches_b64(want, got, glen)) {
			char msg[96];
			snprintf(msg, sizeof(msg), "The %s you specified did not match the calculated checksum.",
				 s3_cksum_alg_name(b->alg));
			s3_error(r, 400, "BadDigest", msg);
			return;
		}
	}
	b->on_end(r, &d);
}

/* ---- routing ------------------------------------------------------------ */

/* Subresources S3 has and we do not implement: NotImplemented, rather than
 * treating them as a plain object/bucket request. */
static const char *const unimplemented[] = {
	"acl", "policy", "tagging", "cors", "lifecycle", "website", "logging", "notification",
	"replication", "encryption", "object-lock", "retention", "legal-hold", "torrent", "restore",
	"select", "accelerate", "requestPayment", "ownershipControls", "publicAccessBlock", "analytics",
	"metrics", "inventory", "intelligent-tiering", "attributes", "policyStatus",
};

static bool has_q(struct s3req *r, const char *name)
{
	struct http_view v;
	return r->h->h.has_query && http_query_param(r->h->h.query, name, &v);
}

static enum s3op route(struct s3req *r, const char **unsupported)
{
	enum http_method m = r->h->h.m;
	const char *meth = http_method_name(m);
	*unsupported = NULL;
	for (size_t i = 0; i < SILT_ARRAY_LEN(unimplemented); i++)
		if (has_q(r, unimplemented[i])) {
			*unsupported = unimplemented[i];
			return S3OP_NONE;
		}
	if (!r->bucket)
		return strcmp(meth, "GET") == 0 ? S3OP_LIST_BUCKETS : S3OP_NONE;
	if (!r->key) {
		if (strcmp(meth, "PUT") == 0)
			return has_q(r, "versioning") ? S3OP_PUT_BUCKET_VERSIONING : S3OP_CREATE_BUCKET;
		if (strcmp(meth, "GET") == 0) {
			if (has_q(r, "location"))
				return S3OP_GET_BUCKET_LOCATION;
			if (has_q(r, "versioning"))
				return S3OP_GET_BUCKET_VERSIONING;
			if (has_q(r, "versions"))
				return S3OP_LIST_OBJECT_VERSIONS;
			if (has_q(r, "uploads"))
				return S3OP_LIST_MULTIPART_UPLOADS;
			return has_q(r, "list-type") ? S3OP_LIST_OBJECTS_V2 : S3OP_LIST_OBJECTS;
		}
		if (strcmp(meth, "HEAD") == 0)
			return S3OP_HEAD_BUCKET;
		if (strcmp(meth, "DELETE") == 0)
			return S3OP_DELETE_BUCKET;
		if (strcmp(meth, "POST") == 0 && has_q(r, "delete"))
			return S3OP_DELETE_OBJECTS;
		return S3OP_NONE;
	}
	bool upload = has_q(r, "uploadId");
	if (strcmp(meth, "PUT") == 0) {
		bool copy = http_header_find(&r->h->h, "x-amz-copy-source", NULL) != NULL;
		if (upload && has_q(r, "partNumber"))
			return copy ? S3OP_UPLOAD_PART_COPY : S3OP_UPLOAD_PART;
		return copy ? S3OP_COPY_OBJECT : S3OP_PUT_OBJECT;
	}
	if (strcmp(meth, "GET") == 0)
		return upload ? S3OP_LIST_PARTS : S3OP_GET_OBJECT;
	if (strcmp(meth, "HEAD") == 0)
		return S3OP_HEAD_OBJECT;
	if (strcmp(meth, "DELETE") == 0)
		return upload ? S3OP_ABORT_MULTIPART_UPLOAD : S3OP_DELETE_OBJECT;
	if (strcmp(meth, "POST") == 0) {
		if (has_q(r, "uploads"))
			return S3OP_CREATE_MULTIPART_UPLOAD;
		if (upload)
			return S3OP_COMPLETE_MULTIPART_UPLOAD;
	}
	return S3OP_NONE;
}

static void (*const op_fns[S3OP__COUNT])(struct s3req *) = {
	[S3OP_LIST_BUCKETS] = s3op_list_buckets,
	[S3OP_CREATE_BUCKET] = s3op_create_bucket,
	[S3OP_HEAD_BUCKET] = s3op_head_bucket,
	[S3OP_DELETE_BUCKET] = s3op_delete_bucket,
	[S3OP_GET_BUCKET_LOCATION] = s3op_get_bucket_location,
	[S3OP_GET_BUCKET_VERSIONING] = s3op_get_bucket_versioning,
	[S3OP_PUT_BUCKET_VERSIONING] = s3op_put_bucket_versioning,
	[S3OP_LIST_OBJECTS] = s3op_list_objects,
	[S3OP_LIST_OBJECTS_V2] = s3op_list_objects,
	[S3OP_LIST_OBJECT_VERSIONS] = s3op_list_object_versions,
	[S3OP_LIST_MULTIPART_UPLOADS] = s3op_list_multipart_uploads,
	[S3OP_DELETE_OBJECTS] = s3op_delete_objects,
	[S3OP_PUT_OBJECT] = s3op_put_object,
	[S3OP_COPY_OBJECT] = s3op_copy_object,
	[S3OP_GET_OBJECT] = s3op_get_object,
	[S3OP_HEAD_OBJECT] = s3op_get_object,
	[S3OP_DELETE_OBJECT] = s3op_delete_object,
	[S3OP_CREATE_MULTIPART_UPLOAD] = s3op_create_multipart_upload,
	[S3OP_UPLOAD_PART] = s3op_upload_part,
	[S3OP_UPLOAD_PART_COPY] = s3op_upload_part_copy,
	[S3OP_COMPLETE_MULTIPART_UPLOAD] = s3op_complete_multipart_upload,
	[S3OP_ABORT_MULTIPART_UPLOAD] = s3op_abort_multipart_upload,
	[S3OP_LIST_PARTS] = s3op_list_parts,
};

/* Splits the request into bucket and key: virtual-host style when the
 * Host is "<bucket>.<domain>[:port]", else path style "/bucket/key". */
static bool split_target(struct s3req *r)
{
	const char *path = http_req_path(r->h);
	if (!path || path[0] != '/')
		return false;
	struct http_view host = r->h->h.host;
	size_t hl = host.len;
	for (size_t i = 0; i < host.len; i++)
		if (host.base[i] == ':') {
			hl = i;
			break;
		}
	const char *dom = r->svc->domain;
	size_t dl = strlen(dom);
	if (dl > 0 && hl > dl + 1 && host.base[hl - dl - 1] == '.' && strncasecmp(host.base + hl - dl, dom, dl) == 0) {
		r->bucket = http_req_strndup(r->h, host.base, hl - dl - 1);
		if (path[1])
			r->key = path + 1;
	} else if (path[1]) {
		const char *slash = strchr(path + 1, '/');
		if (!slash) {
			r->bucket = path + 1;
		} else {
			r->bucket = http_req_strndup(r->h, path + 1, (size_t)(slash - path - 1));
			if (slash[1])
				r->key = slash + 1;
		}
	}
	size_t bl = r->bucket ? strlen(r->bucket) : 0, kl = r->key ? strlen(r->key) : 0;
	char *res = http_req_alloc(r->h, bl + kl + 3), *p = res;
	*p++ = '/';
	memcpy(p, r->bucket ? r->bucket : "", bl);
	p += bl;
	if (r->key) {
		*p++ = '/';
		memcpy(p, r->key, kl);
		p += kl;
	}
	*p = '\0';
	r->resource = res;
	return true;
}

static bool authenticate(struct s3req *r)
{
	const struct http_head *h = &r->h->h;
	struct s3_hdr *hdrs = http_req_alloc(r->h, sizeof(*hdrs) * (size_t)(h->nheaders ? h->nheaders : 1));
	for (int i = 0; i < h->nheaders; i++)
		hdrs[i] = (struct s3_hdr){ h->headers[i].name.base, h->headers[i].name.len, h->headers[i].value.base,
					   h->headers[i].value.len };
	struct s3_auth_req ar = {
		.method = http_method_name(h->m),
		.path = h->path.base,
		.path_len = h->path.len,
		.query = h->has_query ? h->query.base : NULL,
		.query_len = h->has_query ? h->query.len : 0,
		.hdrs = hdrs,
		.nhdrs = (size_t)h->nheaders,
		.now = now_ms() / 1000,
	};
	enum s3_auth_err e = s3_auth_verify(r->svc->auth, &ar, &r->auth);
	if (e == S3_AUTH_OK) {
		size_t n = strnlen(r->auth.access_key, sizeof(r->user) - 1);
		memcpy(r->user, r->auth.access_key, n);
		r->user[n] = '\0';
		return true;
	}
	if (e == S3_AUTH_ANONYMOUS) {
		s3_error(r, 403, "AccessDenied", "Anonymous access is not allowed; sign the request with SigV4.");
		return false;
	}
	log_info("s3", "%s %s %s: auth refused: %s (%s)", r->h->peer, ar.method, r->resource,
		 s3_auth_err_code(e), r->auth.detail ? r->auth.detail : "");
	s3_error(r, s3_auth_err_status(e), s3_auth_err_code(e),
		 r->auth.detail ? r->auth.detail : "The request signature we calculated does not match.");
	return false;
}

bool s3_bucket_check(struct s3req *r)
{
	int rc = s3meta_bucket_head(r->svc->meta, r->bucket, &r->bucket_row);
	if (rc != 0) {
		s3_error_meta(r, rc);
		return false;
	}
	if (strcmp(r->bucket_row.owner, r->user) != 0) {
		s3_error(r, 403, "AccessDenied", "Access Denied");
		return false;
	}
	return true;
}

void s3_locs_release(struct s3svc *svc, struct s3meta_locs *l)
{
	if (l->n > 0) {
		int rc = s3route_free_many(svc->route, l->v, l->n);
		if (rc != 0)
			log_warn("s3", "cannot free the data of %zu objects: %s", l->n, silt_strerror(rc));
	}
	s3meta_locs_destroy(l);
}

/* The request waits for its group commit: a disconnect is only noted (the
 * layer keeps the request until on_commit answers). */
static void commit_wait_abort(struct s3req *r)
{
	(void)r;
}

static void commit_done(struct s3commit_job *j)
{
	struct s3req *r = j->udata;
	r->on_abort = NULL;
	r->on_commit(r, j);
}

struct s3commit_job *s3_commit_job_new(struct s3req *r, enum s3commit_kind kind)
{
	struct s3commit_job *j = xcalloc(1, sizeof(*j));
	r->ops = j;
	r->op_free = s3_ops_free;
	j->kind = kind;
	j->bucket = r->bucket;
	j->key = r->key;
	j->owner = r->user;
	return j;
}

void s3_commit(struct s3req *r, struct s3commit_job *j, void (*on_commit)(struct s3req *r, struct s3commit_job *j))
{
	j->loop = r->h->loop;
	j->done = commit_done;
	j->udata = r;
	r->on_commit = on_commit;
	void (*prev_abort)(struct s3req *) = r->on_abort;
	r->on_abort = commit_wait_abort;
	if (s3commit_submit(r->svc->commit, j) == 0)
		return;
	r->on_abort = prev_abort;
	if (j->data) {
		s3route_put_abort(j->data);
		j->data = NULL;
	}
	s3_error(r, 503, "ServiceUnavailable", "The server is shutting down. Please retry.");
}

bool s3_commit_ok(struct s3req *r, const struct s3commit_job *j)
{
	if (j->data_rc != 0) {
		s3_error_internal(r, "data commit", j->data_rc);
		return false;
	}
	if (j->rc != 0) {
		s3_error_meta(r, j->rc);
		return false;
	}
	return true;
}

static uint64_t g_reqno;
static int g_nstreams;

/* Each HTTP loop thread writes object data to its own data-node stream, so
 * writers on different cores never share a volume file. Threads number
 * themselves on first use. */
static int loop_stream(void)
{
	static int next;
	static _Thread_local int mine = -1;
	if (mine < 0)
		mine = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
	return g_nstreams > 0 ? mine % g_nstreams : 0;
}

static void on_head(struct http_req *hr)
{
	struct s3svc *svc = hr->server_udata;
	struct s3req *r = http_req_alloc(hr, sizeof(*r));
	memset(r, 0, sizeof(*r));
	r->h = hr;
	r->svc = svc;
	r->t0_us = mono_us();
	hr->udata = r;
	uint64_t n = __atomic_add_fetch(&g_reqno, 1, __ATOMIC_RELAXED);
	uint64_t id = ((uint64_t)now_ms() << 20) ^ n;
	for (int i = 0; i < 16; i++)
		r->id[i] = "0123456789ABCDEF"[(id >> (60 - 4 * i)) & 15];
	r->id[16] = '\0';
	r->loop_idx = loop_stream();
	if (!split_target(r)) {
		s3_error(r, 400, "InvalidURI", "Couldn't parse the specified URI.");
		return;
	}
	if (!authenticate(r))
		return;
	const char *unsupported;
	r->op = route(r, &unsupported);
	if (r->op == S3OP_NONE) {
		if (unsupported) {
			char msg[128];
			snprintf(msg, sizeof(msg), "The '%s' subresource is not implemented.", unsupported);
			s3_error(r, 501, "NotImplemented", msg);
		} else {
			s3_error(r, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
		}
		return;
	}
	if (r->key && strlen(r->key) > 1024) {
		s3_error(r, 400, "KeyTooLongError", "Your key is too long");
		return;
	}
	op_fns[r->op](r);
}

static void on_writable(struct http_req *hr)
{
	struct s3req *r = hr->udata;
	if (r && r->on_writable)
		r->on_writable(r);
}

static void on_abort(struct http_req *hr)
{
	struct s3req *r = hr->udata;
	if (!r)
		return;
	if (r->on_abort) {
		r->on_abort(r);
		return;
	}
	/* Nothing asynchronous is in flight: answer (the layer drops it). */
	if (!r->answered)
		s3_error(r, 400, "IncompleteBody", "The request body terminated unexpectedly.");
}

void s3_ops_free(struct s3req *r)
{
	free(r->ops);
	r->ops = NULL;
}

static void on_done(struct http_req *hr, bool ok)
{
	struct s3req *r = hr->udata;
	if (!r)
		return;
	if (r->op_free)
		r->op_free(r);
	body_free(r->body);
	log_debug("s3", "%s %s %s %d %" PRId64 "us%s", hr->peer, http_method_name(hr->h.m),
		  r->resource ? r->resource : "/", r->status, mono_us() - r->t0_us, ok ? "" : " (aborted)");
}

/* Error documents for what the HTTP layer answers itself. */
static void format_error(void *udata, const struct http_req *req, int status, const char *detail,
			 struct wbuf *hdrs, struct wbuf *body)
{
	(void)udata;
	(void)req;
	const char *code = status == 413 ? "EntityTooLarge" : status == 501 ? "NotImplemented" : "BadRequest";
	static const char ct[] = "Content-Type: application/xml\r\n";
	wbuf_put(hdrs, ct, sizeof(ct) - 1);
	struct s3_xw w;
	s3_xw_init(&w, body);
	s3_xw_decl(&w);
	s3_xw_open(&w, "Error");
	s3_xw_elem(&w, "Code", code);
	s3_xw_elem(&w, "Message", detail ? detail : http_reason(status));
	s3_xw_close(&w, "Error");
}

static const struct http_handler s3_handler = {
	.on_head = on_head,
	.on_body = on_body,
	.body_buf = on_body_buf,
	.on_body_end = on_body_end,
	.on_writable = on_writable,
	.on_abort = on_abort,
	.on_done = on_done,
	.format_error = format_error,
};

/* ---- lifecycle ------------------------------------------------------------ */

static int secret_lookup(void *arg, const char *akid, char *secret, size_t cap)
{
	struct s3svc *s = arg;
	char buf[S3META_SECRET_MAX + 1];
	if (s3meta_user_secret(s->meta, akid, buf) != 0)
		return -SILT_ENOENT;
	size_t n = strlen(buf);
	if (n + 1 > cap)
		return -SILT_ENOENT;
	memcpy(secret, buf, n + 1);
	return (int)n;
}

int s3svc_start(const struct s3svc_conf *conf, struct s3svc **out)
{
	char path[PATH_MAX];
	int rc;
	struct s3svc *s = xcalloc(1, sizeof(*s));
	s->conf = *conf;
	snprintf(s->domain, sizeof(s->domain), "%s", conf->domain ? conf->domain : "localhost");
	snprintf(s->region, sizeof(s->region), "%s", conf->region ? conf->region : "us-east-1");
	snprintf(path, sizeof(path), "%s/s3", conf->data_dir);
	if ((rc = mkdir_p(path, 0755)) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/s3/meta.db", conf->data_dir);
	struct s3meta_config mc = { .path = path };
	if ((rc = s3meta_open(&mc, &s->meta)) != 0) {
		log_error("s3", "cannot open the metadata database %s: %s", path, silt_strerror(rc));
		goto fail;
	}
	if ((rc = s3meta_user_ensure(s->meta, conf->root_user, conf->root_password, "root")) != 0) {
		log_error("s3", "cannot set the root user: %s", s3meta_errinfo(rc) ? s3meta_errinfo(rc)->message
										     : silt_strerror(rc));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/s3", conf->data_dir);
	if ((rc = s3route_open(path, (unsigned)SILT_MAX(conf->nthreads, 1), &s->route)) != 0) {
		log_error("s3", "cannot open the data node under %s: %s", path, silt_strerror(rc));
		goto fail;
	}
	g_nstreams = SILT_MAX(conf->nthreads, 1);
	s->nmd5q = SILT_MAX(conf->nthreads, 1);
	s->md5q = xcalloc((size_t)s->nmd5q, sizeof(*s->md5q));
	s->stage_bytes = s3route_chunk_bytes(s->route);
	if ((rc = s3commit_new(s->meta, s->route, &s->commit)) != 0) {
		log_error("s3", "cannot start the committer: %s", silt_strerror(rc));
		goto fail;
	}
	s->auth = s3_auth_ctx_new(secret_lookup, s, 0);
	struct http_server_conf hc;
	http_server_conf_defaults(&hc);
	hc.host = conf->host;
	hc.port = conf->port;
	hc.nthreads = conf->nthreads;
	hc.sched_batch = conf->sched_batch;
	hc.handler = &s3_handler;
	hc.udata = s;
	if ((rc = http_server_start(&hc, &s->http)) != 0) {
		log_error("s3", "cannot listen on %s:%d: %s", conf->host, conf->port, silt_strerror(rc));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	s3svc_stop(s);
	return rc ? rc : -EINVAL;
}

void s3svc_stop(struct s3svc *s)
{
	if (!s)
		return;
	/* Jobs in the committer still answer on their loops: let them all
	 * come back before the loops stop (new ones are refused meanwhile). */
	if (s->commit)
		s3commit_drain(s->commit);
	if (s->http)
		http_server_stop(s->http);
	s3commit_free(s->commit);
	if (s->auth)
		s3_auth_ctx_free(s->auth);
	s3route_close(s->route);
	if (s->meta)
		s3meta_close(s->meta);
	free(s->md5q);
	free(s);
}

#define MPU_REAP_INTERVAL_MS 10000
#define MPU_REAP_BATCH 16

/* Aborts a few multipart uploads nobody finished within the expiry and
 * frees their parts' data. A few per pass, so one pass stays short; a
 * backlog drains over the following passes. */
static void reap_uploads(struct s3svc *s)
{
	int64_t age = s->conf.mpu_expire_ms > 0 ? s->conf.mpu_expire_ms : S3SVC_MPU_EXPIRE_MS;
	struct s3meta_list l;
	int rc = s3meta_mpu_list_abandoned(s->meta, age, MPU_REAP_BATCH, &l);
	if (rc != 0) {
		log_warn("s3", "cannot list abandoned uploads: %s", s3meta_errinfo(rc)->message);
		return;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct s3meta_entry *e = &l.v[i];
		struct s3meta_locs freed = { 0 };
		rc = s3meta_mpu_abort(s->meta, e->bucket, e->key, e->upload_id, &freed);
		if (rc == 0) {
			log_info("s3", "aborted abandoned upload %s of /%s/%s (%zu parts)", e->upload_id, e->bucket,
				 e->key, freed.n);
			s3_locs_release(s, &freed);
		} else if (rc != -S3META_ENOSUCHUPLOAD) {
			log_warn("s3", "cannot abort abandoned upload %s of /%s/%s: %s", e->upload_id, e->bucket,
				 e->key, s3meta_errinfo(rc)->message);
		}
	}
	s3meta_list_destroy(&l);
}

/* Background duties: reclaim abandoned multipart uploads' parts, compact
 * data-node volumes. (WAL checkpoints have their own thread, in the
 * committer.) Housekeeping thread. */
void s3svc_housekeeping(struct s3svc *s, int64_t now)
{
	static int64_t next_gc, next_users, next_mpu;
	if (now >= next_users) {
		/* Users added by `silt user` in another process. */
		next_users = now + 2000;
		s3meta_users_reload(s->meta);
	}
	if (now >= next_mpu) {
		next_mpu = now + MPU_REAP_INTERVAL_MS;
		reap_uploads(s);
	}
	if (now >= next_gc) {
		next_gc = now + 30000;
		s3route_gc(s->route, 0.5, 256u << 20);
	}
}

int s3svc_space(struct s3svc *s, uint64_t *used, uint64_t *reclaimable)
{
	return s3route_space(s->route, used, reclaimable);
}
