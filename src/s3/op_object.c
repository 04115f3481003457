/* op_object.c - object operations: PutObject, GetObject/HeadObject,
 * DeleteObject, CopyObject, DeleteObjects.
 *
 * Object bytes never sit whole in memory. A PUT streams the body through
 * the pipeline (digests on the way) into a data-node put; once the body is
 * complete, the group committer (s3/commit.h) records the data and then the
 * version, so a failed or abandoned upload leaves no visible object, only
 * garbage chunks for GC. DeleteObject's and DeleteObjects' metadata changes
 * go through the committer as well (a DeleteObjects batch as one job: every
 * key in the group's transaction, each failing alone). A GET streams
 * verified pieces one at a time, with the HTTP layer's backpressure; a
 * piece that fails its check ends the connection rather than send wrong
 * bytes. CopyObject moves the source's bytes into a new put with the copy
 * pump (s3/copy.h: a few MiB per loop turn, so a large copy does not stall
 * the loop's other connections), then records it through the committer as
 * PutObject does.
 *
 * All functions run on the request's loop thread; the committer runs the
 * metadata calls of the jobs handed to it and answers through *_committed
 * on the loop. */
#include "core/platform.h"
#include "core/log.h"
#include "s3/commit.h"
#include "s3/copy.h"
#include "s3/route.h"
#include "s3/service.h"

#include <ctype.h>
#include <time.h>

#define PUT_MAX (5ll << 30)           /* S3's single PUT / copy limit */
#define USER_META_MAX 2048            /* names + values of x-amz-meta-* */
#define DELETE_BODY_MAX (2 << 20)
#define DEFAULT_CONTENT_TYPE "binary/octet-stream"

/* ---- shared helpers ------------------------------------------------------ */

/* versionId from the query: NULL when absent; false (answered) when empty. */
static bool version_param(struct s3req *r, const char **vid)
{
	bool present;
	*vid = s3_query(r, "versionId", &present);
	if (present && (!*vid || !**vid)) {
		s3_error(r, 400, "InvalidArgument", "Version id cannot be the empty string");
		return false;
	}
	return true;
}

static void quoted_etag_header(struct s3req *r, const char *etag)
{
	/* Assembled by hand: this runs on every GET and HEAD, and a
	 * printf-family call costs more than the rest of the header. */
	char q[128];
	size_t n = strlen(etag);
	if (n > sizeof(q) - 2) {
		http_resp_headerf(r->h, "ETag", "\"%s\"", etag);
		return;
	}
	q[0] = '"';
	memcpy(q + 1, etag, n);
	q[n + 1] = '"';
	http_resp_headern(r->h, "ETag", q, n + 2);
}

/* The headers S3 stores with an object, as the client sent them. */
struct obj_attrs {
	const char *content_type, *cache_control, *content_disposition, *content_encoding,
		*content_language, *expires;
	struct wbuf umeta; /* s3meta_umeta_* blob */
};

static void attrs_destroy(struct obj_attrs *a)
{
	wbuf_destroy(&a->umeta);
}

/* Content-Encoding without the aws-chunked token, which describes the
 * transfer, not the object (S3 drops it). NULL when nothing is left. */
static const char *strip_aws_chunked(struct s3req *r, const char *ce)
{
	if (!ce)
		return NULL;
	size_t n = strlen(ce);
	char *out = http_req_alloc(r->h, n + 1);
	size_t o = 0;
	const char *p = ce;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *s = p;
		while (*p && *p != ',')
			p++;
		const char *e = p;
		while (e > s && e[-1] == ' ')
			e--;
		if (e == s || ((size_t)(e - s) == 11 && strncasecmp(s, "aws-chunked", 11) == 0))
			continue;
		if (o)
			out[o++] = ',';
		memcpy(out + o, s, (size_t)(e - s));
		o += (size_t)(e - s);
	}
	out[o] = '\0';
	return o ? out : NULL;
}

/* Reads the storable headers and x-amz-meta-* of the request. Names are
 * lower-cased; repeated names are joined with commas as S3 does. Answers
 * MetadataTooLarge and returns false over S3's 2 KiB. */
static bool attrs_from_request(struct s3req *r, struct obj_attrs *a)
{
	memset(a, 0, sizeof(*a));
	wbuf_init(&a->umeta, 0, S3META_USER_META_MAX);
	a->content_type = s3_header(r, "Content-Type");
	if (!a->content_type || !*a->content_type)
		a->content_type = DEFAULT_CONTENT_TYPE;
	a->cache_control = s3_header(r, "Cache-Control");
	a->content_disposition = s3_header(r, "Content-Disposition");
	a->content_encoding = strip_aws_chunked(r, s3_header(r, "Content-Encoding"));
	a->content_language = s3_header(r, "Content-Language");
	a->expires = s3_header(r, "Expires");
	static const char pfx[] = "x-amz-meta-";
	const size_t pl = sizeof(pfx) - 1;
	const struct http_head *h = &r->h->h;
	size_t total = 0;
	for (int i = 0; i < h->nheaders; i++) {
		const struct http_header *hi = &h->headers[i];
		if (hi->name.len <= pl || strncasecmp(hi->name.base, pfx, pl) != 0)
			continue;
		bool seen = false;
		for (int j = 0; j < i && !seen; j++)
			seen = h->headers[j].name.len == hi->name.len &&
			       strncasecmp(h->headers[j].name.base, hi->name.base, hi->name.len) == 0;
		if (seen)
			continue;
		size_t nlen = hi->name.len - pl;
		char *name = http_req_alloc(r->h, nlen + 1);
		for (size_t k = 0; k < nlen; k++)
			name[k] = (char)tolower((unsigned char)hi->name.base[pl + k]);
		name[nlen] = '\0';
		/* The value, with later headers of the same name appended. */
		size_t vcap = hi->value.len + 1;
		for (int j = i + 1; j < h->nheaders; j++)
			if (h->headers[j].name.len == hi->name.len &&
			    strncasecmp(h->headers[j].name.base, hi->name.base, hi->name.len) == 0)
				vcap += h->headers[j].value.len + 1;
		char *val = http_req_alloc(r->h, vcap);
		size_t vlen = hi->value.len;
		memcpy(val, hi->value.base, vlen);
		for (int j = i + 1; j < h->nheaders; j++)
			if (h->headers[j].name.len == hi->name.len &&
			    strncasecmp(h->headers[j].name.base, hi->name.base, hi->name.len) == 0) {
				val[vlen++] = ',';
				memcpy(val + vlen, h->headers[j].value.base, h->headers[j].value.len);
				vlen += h->headers[j].value.len;
			}
		val[vlen] = '\0';
		total += nlen + vlen;
		if (total > USER_META_MAX) {
			s3_error(r, 400, "MetadataTooLarge",
				 "Your metadata headers exceed the maximum allowed metadata size.");
			return false;
		}
		s3meta_umeta_add(&a->umeta, name, val);
	}
	if (a->umeta.err) {
		s3_error(r, 400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.");
		return false;
	}
	return true;
}

static void attrs_to_put(const struct obj_attrs *a, struct s3meta_put *p)
{
	p->content_type = a->content_type;
	p->cache_control = a->cache_control;
	p->content_disposition = a->content_disposition;
	p->content_encoding = a->content_encoding;
	p->content_language = a->content_language;
	p->expires = a->expires;
	p->user_meta = a->umeta.len ? a->umeta.p : NULL;
	p->user_meta_len = a->umeta.len;
}

/* S3's conditional writes (If-None-Match: * and If-Match on PUT), checked
 * against the current latest version just before the new one is stored.
 * Not atomic with the store: a racing writer can slip in between. */
static bool put_conditions_ok(struct s3req *r)
{
	const char *inm = s3_header(r, "If-None-Match");
	const char *im = s3_header(r, "If-Match");
	if (!inm && !im)
		return true;
	struct s3meta_obj cur;
	int rc = s3meta_object_get(r->svc->meta, r->bucket, r->key, NULL, &cur);
	bool exists = rc == 0;
	bool ok = true;
	if (rc != 0 && rc != -S3META_ENOSUCHKEY) {
		s3meta_obj_destroy(&cur);
		s3_error_meta(r, rc);
		return false;
	}
	if (inm) {
		if (strcmp(inm, "*") != 0) {
			s3_error(r, 501, "NotImplemented", "If-None-Match on a write accepts only '*'.");
			ok = false;
		} else if (exists) {
			s3_error(r, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
			ok = false;
		}
	}
	if (ok && im) {
		if (!exists) {
			s3_error(r, 404, "NoSuchKey", "The specified key does not exist.");
			ok = false;
		} else if (s3_eval_conditions(r, "", cur.etag, cur.mtime_ms) == 412) {
			s3_error(r, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
			ok = false;
		}
	}
	s3meta_obj_destroy(&cur);
	return ok;
}

/* ---- PutObject ------------------------------------------------------------ */

struct putop {
	struct s3route_put *p; /* until sealed and handed to the committer, or aborted */
	struct obj_attrs a;
	struct s3commit_job job;
	char etag[33];          /* unquoted hex MD5, for the metadata */
	char quoted_etag[36];   /* for the response */
	enum s3_cksum_alg alg;
	char cksum_b64[64];
};

static void put_free(struct s3req *r)
{
	struct putop *o = r->ops;
	if (!o)
		return;
	if (o->p)
		s3route_put_abort(o->p);
	attrs_destroy(&o->a);
	free(o);
	r->ops = NULL;
}

/* The client went away mid-body: drop the data now (nothing was stored in
 * the metadata service) and finish the request as the layer requires. */
static void put_abort(struct s3req *r)
{
	struct putop *o = r->ops;
	if (o && o->p) {
		s3route_put_abort(o->p);
		o->p = NULL;
	}
	s3_error(r, 400, "IncompleteBody", "The request body terminated unexpectedly.");
}

static int put_data(struct s3req *r, const uint8_t *p, size_t n)
{
	struct putop *o = r->ops;
	int rc = s3route_put_write(o->p, p, n);
	if (rc != 0) {
		s3route_put_abort(o->p);
		o->p = NULL;
		s3_error_internal(r, "data write", rc);
		return -1;
	}
	return 0;
}

/* The group commit's answer (loop thread). */
static void put_committed(struct s3req *r, struct s3commit_job *j)
{
	struct putop *o = r->ops;
	if (!s3_commit_ok(r, j))
		return;
	if (j->new_version_id[0])
		http_resp_header(r->h, "x-amz-version-id", j->new_version_id);
	http_resp_header(r->h, "ETag", o->quoted_etag);
	if (j->put.cksum_algo && s3_cksum_alg_header(o->alg))
		http_resp_header(r->h, s3_cksum_alg_header(o->alg), o->cksum_b64);
	s3_respond_empty(r, 200);
}

/* The body is complete and every digest matched: the last bytes go to the
 * volume here, the locations and the version are recorded by the group
 * committer, which answers through put_committed. */
static void put_end(struct s3req *r, const struct s3body_digest *d)
{
	struct putop *o = r->ops;
	if (!put_conditions_ok(r))
		return; /* op_free aborts the put */
	int rc = s3route_put_seal(o->p);
	if (rc != 0) {
		s3_error_internal(r, "data write", rc);
		return;
	}
	s3_hex_encode(d->md5, 16, o->etag);
	_Static_assert(sizeof(o->quoted_etag) == sizeof(d->etag) && sizeof(o->cksum_b64) == sizeof(d->cksum_b64),
		       "digest strings are copied whole");
	memcpy(o->quoted_etag, d->etag, sizeof(o->quoted_etag));
	o->alg = d->alg;
	memcpy(o->cksum_b64, d->cksum_b64, sizeof(o->cksum_b64));
	struct s3commit_job *j = &o->job;
	j->kind = S3COMMIT_PUT;
	j->bucket = r->bucket;
	j->key = r->key;
	j->data = o->p;
	o->p = NULL;
	j->put = (struct s3meta_put){ .size = d->size, .etag = o->etag, .owner = r->user };
	attrs_to_put(&o->a, &j->put);
	if (d->alg != S3_CKSUM_NONE && o->cksum_b64[0]) {
		j->put.cksum_algo = s3_cksum_alg_name(d->alg);
		j->put.cksum_value = o->cksum_b64;
	}
	s3_commit(r, j, put_committed);
}

void s3op_put_object(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	struct putop *o = xcalloc(1, sizeof(*o));
	r->ops = o;
	r->op_free = put_free;
	if (!attrs_from_request(r, &o->a))
		return;
	int rc = s3route_put_begin(r->svc->route, (unsigned)r->loop_idx, &o->p);
	if (rc != 0) {
		o->p = NULL;
		s3_error_internal(r, "data put", rc);
		return;
	}
	r->on_abort = put_abort;
	s3_body_stream(r, PUT_MAX, true, put_data, put_end);
}

/* ---- GetObject / HeadObject -------------------------------------------- */

struct getop {
	struct s3route_get *g;
	const uint8_t *p; /* rest of the current piece, valid until the next get call */
	size_t n;
	bool ended;
};

static void get_free(struct s3req *r)
{
	struct getop *o = r->ops;
	if (!o)
		return;
	s3route_get_close(o->g);
	r->ops = NULL;
}

/* Ends the stream: complete, or (short of its Content-Length) so that the
 * layer closes the connection and the client sees a truncated body. */
static void get_end(struct s3req *r)
{
	struct getop *o = r->ops;
	if (o->ended)
		return;
	o->ended = true;
	s3route_get_close(o->g);
	o->g = NULL;
	r->on_writable = NULL;
	r->on_abort = NULL;
	http_stream_end(r->h); /* r may be gone after this */
}

#define GET_REF_MIN (64 * 1024)

/* Writes pieces until the layer refuses bytes (then on_writable resumes)
 * or the range is done. One piece in memory at a time. */
static void get_pump(struct s3req *r)
{
	struct getop *o = r->ops;
	for (;;) {
		if (o->n == 0) {
			int rc = s3route_get_next(o->g, &o->p, &o->n);
			if (rc == 0) {
				get_end(r);
				return;
			}
			if (rc < 0) {
				log_error("s3", "%s %s: read failed mid-response, ending the connection: %s", r->id,
					  r->resource, silt_strerror(rc));
				o->n = 0;
				get_end(r);
				return;
			}
			continue;
		}
		/* Big pieces go out straight from the data node's verified
		 * buffer (valid until the next s3route_get_next, which only
		 * on_writable leads to); small ones are cheaper copied. */
		bool by_ref = o->n >= GET_REF_MIN;
		ssize_t w = by_ref ? http_stream_write_ref(r->h, o->p, o->n) : http_stream_write(r->h, o->p, o->n);
		if (w < 0) {
			get_end(r);
			return;
		}
		o->p += w;
		o->n -= (size_t)w;
		if (o->n > 0 || by_ref)
			return;
	}
}

static void get_abort(struct s3req *r)
{
	get_end(r);
}

static void obj_headers(struct s3req *r, const struct s3meta_obj *ob)
{
	char date[40];
	s3_http_date(ob->mtime_ms, date);
	http_resp_header(r->h, "Last-Modified", date);
	quoted_etag_header(r, ob->etag);
	if (r->bucket_row.versioning != S3META_UNVERSIONED)
		http_resp_header(r->h, "x-amz-version-id", ob->version_id);
}

/* response-* query overrides win over the stored headers. */
static void stored_header(struct s3req *r, const char *name, const char *override_q, const char *stored)
{
	bool present;
	const char *v = s3_query(r, override_q, &present);
	if (present && v)
		http_resp_header(r->h, name, v);
	else if (stored)
		http_resp_header(r->h, name, stored);
}

static void content_headers(struct s3req *r, const struct s3meta_obj *ob)
{
	stored_header(r, "Content-Type", "response-content-type",
		      ob->content_type ? ob->content_type : DEFAULT_CONTENT_TYPE);
	stored_header(r, "Cache-Control", "response-cache-control", ob->cache_control);
	stored_header(r, "Content-Disposition", "response-content-disposition", ob->content_disposition);
	stored_header(r, "Content-Encoding", "response-content-encoding", ob->content_encoding);
	stored_header(r, "Content-Language", "response-content-language", ob->content_language);
	stored_header(r, "Expires", "response-expires", ob->expires);
	size_t pos = 0;
	const char *n, *v;
	size_t nl, vl;
	while (s3meta_umeta_next(ob->user_meta, ob->user_meta_len, &pos, &n, &nl, &v, &vl)) {
		char hn[300];
		if (nl > sizeof(hn) - 12)
			continue;
		snprintf(hn, sizeof(hn), "x-amz-meta-%.*s", (int)nl, n);
		http_resp_headern(r->h, hn, v, vl);
	}
}

enum range_kind { RANGE_NONE, RANGE_OK, RANGE_UNSATISFIABLE };

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	if (n == 0 || n > 19)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* One "bytes=" range against size. Anything S3 ignores -- a malformed
 * header, another unit, several ranges -- is RANGE_NONE (whole object). */
static enum range_kind parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
	if (strncmp(h, "bytes=", 6) != 0)
		return RANGE_NONE;
	const char *s = h + 6;
	while (*s == ' ')
		s++;
	if (strchr(s, ','))
		return RANGE_NONE;
	const char *dash = strchr(s, '-');
	if (!dash)
		return RANGE_NONE;
	const char *end = s + strlen(s);
	while (end > dash + 1 && end[-1] == ' ')
		end--;
	uint64_t a, b;
	if (dash == s) {
		if (!parse_u64(dash + 1, (size_t)(end - dash - 1), &b))
			return RANGE_NONE;
		if (b == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		*len = SILT_MIN(b, size);
		*off = size - *len;
		return RANGE_OK;
	}
	if (!parse_u64(s, (size_t)(dash - s), &a))
		return RANGE_NONE;
	if (dash + 1 == end) {
		b = UINT64_MAX;
	} else if (!parse_u64(dash + 1, (size_t)(end - dash - 1), &b) || b < a) {
		return RANGE_NONE;
	}
	if (a >= size)
		return RANGE_UNSATISFIABLE;
	*off = a;
	*len = SILT_MIN(b, size - 1) - a + 1;
	return RANGE_OK;
}

/* partNumber of a multipart object: its offset and size, and the part
 * count. A single-part object has one part, the whole object. */
static bool part_range(const struct s3meta_obj *ob, int part, uint64_t *off, uint64_t *len, int *count)
{
	if (ob->parts_count <= 0) {
		*count = 1;
		*off = 0;
		*len = (uint64_t)ob->size;
		return part == 1;
	}
	struct s3meta_mploc_iter it;
	uint64_t n;
	*count = ob->parts_count;
	if (!s3meta_mploc_init(&it, ob->locator, ob->locator_len, &n))
		return false;
	uint64_t base = 0;
	int64_t size;
	const uint8_t *l;
	size_t ll;
	for (int i = 1; s3meta_mploc_next(&it, &size, &l, &ll); i++) {
		if (i == part) {
			*off = base;
			*len = (uint64_t)size;
			return true;
		}
		base += (uint64_t)size;
	}
	return false;
}

/* Answers a failed lookup; a delete marker adds the headers S3 sends. */
static void get_lookup_error(struct s3req *r, int rc, const struct s3meta_obj *ob)
{
	if (ob->delete_marker) {
		http_resp_header(r->h, "x-amz-delete-marker", "true");
		if (ob->version_id[0])
			http_resp_header(r->h, "x-amz-version-id", ob->version_id);
		if (rc == -S3META_EMETHODNOTALLOWED) {
			char date[40];
			s3_http_date(ob->mtime_ms, date);
			http_resp_header(r->h, "Last-Modified", date);
			http_resp_header(r->h, "Allow", "DELETE");
		}
	}
	s3_error_meta(r, rc);
}

void s3op_get_object(struct s3req *r)
{
	bool head = r->op == S3OP_HEAD_OBJECT;
	const char *vid;
	if (!s3_bucket_check(r) || !version_param(r, &vid))
		return;
	bool part_present;
	const char *pn = s3_query(r, "partNumber", &part_present);
	int part = 0;
	if (part_present) {
		uint64_t v;
		if (!pn || !parse_u64(pn, strlen(pn), &v) || v < 1 || v > S3META_PART_MAX) {
			s3_error(r, 400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
			return;
		}
		part = (int)v;
	}
	const char *range = s3_header(r, "Range");
	if (part && range) {
		s3_error(r, 400, "InvalidRequest", "Cannot specify both Range header and partNumber query parameter");
		return;
	}
	struct s3meta_obj ob;
	int rc = s3meta_object_get(r->svc->meta, r->bucket, r->key, vid, &ob);
	if (rc != 0) {
		get_lookup_error(r, rc, &ob);
		s3meta_obj_destroy(&ob);
		return;
	}
	int cond = s3_eval_conditions(r, "", ob.etag, ob.mtime_ms);
	if (cond == 412) {
		s3_error(r, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
		s3meta_obj_destroy(&ob);
		return;
	}
	if (cond == 304) {
		obj_headers(r, &ob);
		s3meta_obj_destroy(&ob);
		s3_respond_empty(r, 304);
		return;
	}
	uint64_t size = (uint64_t)ob.size, off = 0, len = size;
	int status = 200;
	if (part) {
		int count;
		if (!part_range(&ob, part, &off, &len, &count)) {
			s3_error(r, 416, "InvalidPartNumber", "The requested partnumber is not satisfiable");
			s3meta_obj_destroy(&ob);
			return;
		}
		if (ob.parts_count > 0) {
			http_resp_headerf(r->h, "x-amz-mp-parts-count", "%d", count);
			status = 206;
		}
	} else if (range) {
		enum range_kind k = parse_range(range, size, &off, &len);
		if (k == RANGE_UNSATISFIABLE) {
			http_resp_headerf(r->h, "Content-Range", "bytes */%" PRIu64, size);
			s3_error(r, 416, "InvalidRange", "The requested range is not satisfiable");
			s3meta_obj_destroy(&ob);
			return;
		}
		if (k == RANGE_OK)
			status = 206;
	}
	if (status == 206 && len > 0)
		http_resp_headerf(r->h, "Content-Range", "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, off,
				  off + len - 1, size);
	obj_headers(r, &ob);
	content_headers(r, &ob);
	http_resp_header(r->h, "Accept-Ranges", "bytes");
	const char *mode = s3_header(r, "x-amz-checksum-mode");
	if (mode && strcasecmp(mode, "ENABLED") == 0 && status == 200 && ob.cksum_algo && ob.cksum_value) {
		enum s3_cksum_alg a = s3_cksum_alg_from_name(ob.cksum_algo, strlen(ob.cksum_algo));
		const char *hn = s3_cksum_alg_header(a);
		if (hn) {
			http_resp_header(r->h, hn, ob.cksum_value);
			http_resp_header(r->h, "x-amz-checksum-type",
					 strchr(ob.cksum_value, '-') ? "COMPOSITE" : "FULL_OBJECT");
		}
	}
	/* In the request's arena: freed with the request, no malloc per GET. */
	struct getop *o = http_req_alloc(r->h, sizeof(*o));
	memset(o, 0, sizeof(*o));
	r->ops = o;
	r->op_free = get_free;
	if (!head && len > 0) {
		rc = s3route_get_open(r->svc->route, ob.locator, ob.locator_len, off, len, &o->g);
		/* The first piece is read before answering, so a failure there is
		 * still a proper 500. */
		if (rc == 0)
			rc = s3route_get_next(o->g, &o->p, &o->n);
		if (rc == 0)
			rc = -SILT_ECORRUPT; /* fewer bytes than the metadata says */
		if (rc < 0) {
			s3meta_obj_destroy(&ob);
			s3_error_internal(r, "data read", rc);
			return;
		}
	}
	s3meta_obj_destroy(&ob);
	if (!head && len > 0 && o->n == len) {
		/* The whole range is in the first piece (a small object): one
		 * response from the verified bytes, no copy into the output
		 * buffer and no streaming rounds. get_free closes the read
		 * (and with it the piece) after the last byte went out. */
		o->ended = true;
		s3_respond_ref(r, status, o->p, o->n);
		return;
	}
	if (s3_respond_stream(r, status, (int64_t)len) != 0)
		return;
	if (head || len == 0) {
		o->ended = true;
		http_stream_end(r->h);
		return;
	}
	r->on_writable = get_pump;
	r->on_abort = get_abort;
	get_pump(r);
}

/* ---- DeleteObject --------------------------------------------------------- */

static void delete_committed(struct s3req *r, struct s3commit_job *j)
{
	if (j->rc != 0) {
		s3_error_meta(r, j->rc);
		return;
	}
	if (j->del.delete_marker)
		http_resp_header(r->h, "x-amz-delete-marker", "true");
	if (j->del.version_id[0])
		http_resp_header(r->h, "x-amz-version-id", j->del.version_id);
	s3_respond_empty(r, 204);
}

void s3op_delete_object(struct s3req *r)
{
	const char *vid;
	if (!s3_bucket_check(r) || !version_param(r, &vid))
		return;
	struct s3commit_job *j = s3_commit_job_new(r, S3COMMIT_DELETE);
	j->version_id = vid;
	s3_commit(r, j, delete_committed);
}

/* ---- CopyObject ----------------------------------------------------------- */

static void attrs_from_source(const struct s3meta_obj *src, struct obj_attrs *a)
{
	memset(a, 0, sizeof(*a));
	wbuf_init(&a->umeta, 0, S3META_USER_META_MAX);
	a->content_type = src->content_type;
	a->cache_control = src->cache_control;
	a->content_disposition = src->content_disposition;
	a->content_encoding = src->content_encoding;
	a->content_language = src->content_language;
	a->expires = src->expires;
	if (src->user_meta_len)
		wbuf_put(&a->umeta, src->user_meta, src->user_meta_len);
}

/* A CopyObject in flight: the source version (the attributes a COPY
 * directive keeps point into it), the copy pump, and the job. */
struct copyop {
	struct s3copy cp;
	struct s3meta_obj src;
	bool src_versioned;      /* answer x-amz-copy-source-version-id */
	struct obj_attrs a;
	enum s3_cksum_alg alg;
	struct s3commit_job job;
	char etag[33];
	char ckb64[S3_CKSUM_B64_MAX];
};

static void copy_op_free(struct s3req *r)
{
	struct copyop *o = r->ops;
	if (!o)
		return;
	s3copy_destroy(&o->cp);
	attrs_destroy(&o->a);
	s3meta_obj_destroy(&o->src);
	free(o);
	r->ops = NULL;
}

/* The group commit's answer (loop thread). */
static void copy_committed(struct s3req *r, struct s3commit_job *j)
{
	struct copyop *o = r->ops;
	if (!s3_commit_ok(r, j))
		return;
	if (j->new_version_id[0])
		http_resp_header(r->h, "x-amz-version-id", j->new_version_id);
	if (o->src_versioned)
		http_resp_header(r->h, "x-amz-copy-source-version-id", o->src.version_id);
	/* The new version's time: read back, as the metadata service set it. */
	struct s3meta_obj now;
	int64_t mtime = 0;
	if (s3meta_object_get(r->svc->meta, r->bucket, r->key, NULL, &now) == 0 && strcmp(now.etag, o->etag) == 0)
		mtime = now.mtime_ms;
	s3meta_obj_destroy(&now);
	if (!mtime)
		mtime = (int64_t)time(NULL) * 1000;
	char date[40];
	s3_iso_date(mtime, date);
	struct wbuf b;
	struct s3_xw w;
	s3_xml_begin(r, &b, &w, "CopyObjectResult");
	char qetag[40];
	snprintf(qetag, sizeof(qetag), "\"%s\"", o->etag);
	s3_xw_elem(&w, "ETag", qetag);
	s3_xw_elem(&w, "LastModified", date);
	if (o->cp.have_ck) {
		char en[32];
		snprintf(en, sizeof(en), "Checksum%s", s3_cksum_alg_name(o->alg));
		s3_xw_elem(&w, en, o->ckb64);
	}
	s3_xw_close(&w, "CopyObjectResult");
	s3_respond_xml(r, 200, &b);
}

/* Every byte is copied: the put is sealed and handed, with the version, to
 * the group committer, as PutObject's is. */
static void copy_copied(struct s3req *r, struct s3copy *cp)
{
	struct copyop *o = r->ops;
	uint8_t dig[S3_CKSUM_MAX_DIGEST];
	s3copy_digests(cp, dig, o->ckb64);
	s3_hex_encode(dig, 16, o->etag);
	int rc = s3route_put_seal(cp->put);
	if (rc != 0) {
		s3_error_internal(r, "copy", rc);
		return;
	}
	struct s3commit_job *j = &o->job;
	j->kind = S3COMMIT_PUT;
	j->bucket = r->bucket;
	j->key = r->key;
	j->data = cp->put;
	cp->put = NULL;
	j->put = (struct s3meta_put){ .size = cp->size, .etag = o->etag, .owner = r->user };
	attrs_to_put(&o->a, &j->put);
	if (cp->have_ck) {
		j->put.cksum_algo = s3_cksum_alg_name(o->alg);
		j->put.cksum_value = o->ckb64;
	}
	s3_commit(r, j, copy_committed);
}

void s3op_copy_object(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	const char *dir = s3_header(r, "x-amz-metadata-directive");
	bool replace = false;
	if (dir && strcmp(dir, "REPLACE") == 0)
		replace = true;
	else if (dir && strcmp(dir, "COPY") != 0) {
		s3_error(r, 400, "InvalidArgument", "Unknown metadata directive.");
		return;
	}
	const char *algname = s3_header(r, "x-amz-checksum-algorithm");
	enum s3_cksum_alg alg = S3_CKSUM_NONE;
	if (algname) {
		alg = s3_cksum_alg_from_name(algname, strlen(algname));
		if (alg == S3_CKSUM_NONE || alg == S3_CKSUM_MD5) {
			s3_error(r, 400, "InvalidRequest", "Value for x-amz-checksum-algorithm header is invalid.");
			return;
		}
	}
	struct copyop *o = xcalloc(1, sizeof(*o));
	r->ops = o;
	r->op_free = copy_op_free;
	struct s3meta_bucket sb;
	const char *src_key;
	if (!s3_copy_source(r, &sb, &o->src, &src_key))
		return;
	const struct s3meta_obj *src = &o->src;
	bool self = strcmp(sb.name, r->bucket) == 0 && strcmp(src_key, r->key) == 0;
	if (self && !replace && src->is_latest && alg == S3_CKSUM_NONE) {
		s3_error(r, 400, "InvalidRequest",
			 "This copy request is illegal because it is trying to copy an object to itself without changing "
			 "the object's metadata, storage class, website redirect location or encryption attributes.");
		return;
	}
	if (src->size > PUT_MAX) {
		s3_error(r, 400, "InvalidRequest",
			 "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120");
		return;
	}
	if (!replace)
		attrs_from_source(src, &o->a);
	else if (!attrs_from_request(r, &o->a))
		return;
	if (alg == S3_CKSUM_NONE && src->cksum_algo)
		alg = s3_cksum_alg_from_name(src->cksum_algo, strlen(src->cksum_algo));
	o->alg = alg;
	o->src_versioned = sb.versioning != S3META_UNVERSIONED;
	s3copy_start(r, &o->cp, src->locator, src->locator_len, 0, src->size, alg, copy_copied);
}

/* ---- DeleteObjects ---------------------------------------------------- */

/* The parsed request and its committer job, until the answer. */
struct delmany_op {
	struct s3_delete_req dr;
	struct s3commit_key *keys; /* one per dr.objs[i] */
	struct s3commit_job job;
};

static void delmany_free(struct s3req *r)
{
	struct delmany_op *o = r->ops;
	if (!o)
		return;
	s3_delete_req_free(&o->dr);
	free(o->keys);
	free(o);
	r->ops = NULL;
}

/* The group commit's answer (loop thread): Deleted or Error per key, in
 * the request's order. */
static void delete_objects_committed(struct s3req *r, struct s3commit_job *j)
{
	struct delmany_op *o = r->ops;
	const struct s3_delete_req *dr = &o->dr;
	struct wbuf b;
	struct s3_xw w;
	s3_xml_begin(r, &b, &w, "DeleteResult");
	for (size_t i = 0; i < dr->nobjs; i++) {
		const struct s3_delete_obj *ob = &dr->objs[i];
		const struct s3commit_key *ky = &j->keys[i];
		if (ky->rc != 0) {
			const struct s3meta_errinfo *ei = s3meta_errinfo(ky->rc);
			if (ei->http_status >= 500)
				log_warn("s3", "%s %s: delete of one key failed: %s", r->id, r->resource, ei->code);
			s3_xw_open(&w, "Error");
			s3_xw_elem_n(&w, "Key", ob->key, ob->key_len);
			if (ob->version_id)
				s3_xw_elem(&w, "VersionId", ob->version_id);
			s3_xw_elem(&w, "Code", ei->code);
			s3_xw_elem(&w, "Message", ei->message);
			s3_xw_close(&w, "Error");
			continue;
		}
		if (dr->quiet)
			continue;
		s3_xw_open(&w, "Deleted");
		s3_xw_elem_n(&w, "Key", ob->key, ob->key_len);
		if (ob->version_id)
			s3_xw_elem(&w, "VersionId", ob->version_id);
		if (ky->del.delete_marker) {
			s3_xw_elem_bool(&w, "DeleteMarker", true);
			if (ky->del.version_id[0])
				s3_xw_elem(&w, "DeleteMarkerVersionId", ky->del.version_id);
		}
		s3_xw_close(&w, "Deleted");
	}
	s3_xw_close(&w, "DeleteResult");
	s3_respond_xml(r, 200, &b);
}

/* The whole batch is one committer job: every key's delete in the group's
 * metadata transaction (each undone alone if it fails), the data they
 * free released by the committer. */
static void delete_objects_body(struct s3req *r, const struct s3body_digest *d)
{
	(void)d;
	size_t len;
	const uint8_t *body = s3_body_bytes(r, &len);
	struct delmany_op *o = xcalloc(1, sizeof(*o));
	r->ops = o;
	r->op_free = delmany_free;
	const char *why = NULL;
	if (s3_xml_parse_delete(body, len, NULL, &o->dr, &why) != 0) {
		s3_error(r, 400, "MalformedXML", why ? why : "The XML you provided was not well-formed.");
		return;
	}
	o->keys = xcalloc(o->dr.nobjs, sizeof(*o->keys));
	for (size_t i = 0; i < o->dr.nobjs; i++) {
		const struct s3_delete_obj *ob = &o->dr.objs[i];
		struct s3commit_key *ky = &o->keys[i];
		/* An empty key, one with a NUL inside or an empty version id
		 * is refused here; the committer skips it. */
		if (ob->key_len == 0 || strlen(ob->key) != ob->key_len || (ob->version_id && !ob->version_id[0])) {
			ky->rc = -S3META_EINVALIDARGUMENT;
			continue;
		}
		ky->key = ob->key;
		ky->version_id = ob->version_id;
	}
	struct s3commit_job *j = &o->job;
	j->kind = S3COMMIT_DELETE_MANY;
	j->bucket = r->bucket;
	j->owner = r->user;
	j->keys = o->keys;
	j->nkeys = o->dr.nobjs;
	s3_commit(r, j, delete_objects_committed);
}

void s3op_delete_objects(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	/* S3 requires an integrity check on this body: Content-MD5, or (newer
	 * SDKs) any x-amz-checksum-*, as a header or announced trailer. */
	bool have = http_header_find(&r->h->h, "Content-MD5", NULL) != NULL;
	const struct http_head *h = &r->h->h;
	for (int i = 0; i < h->nheaders && !have; i++)
		have = s3_cksum_alg_from_header(h->headers[i].name.base, h->headers[i].name.len) != S3_CKSUM_NONE;
	if (!have) {
		const char *tr = s3_header(r, "x-amz-trailer");
		have = tr && s3_cksum_alg_from_header(tr, strlen(tr)) != S3_CKSUM_NONE;
	}
	if (!have) {
		s3_error(r, 400, "InvalidRequest", "Missing required header for this request: Content-MD5");
		return;
	}
	s3_body_collect_verified(r, DELETE_BODY_MAX, delete_objects_body);
}
