/* s3meta_list.c - ListObjects (v1, v2), ListObjectVersions and
 * ListMultipartUploads: one walker over an ordered index range.
 *
 * The walker seeks to the first name at or after a start position and
 * steps through names in binary order. A name under the prefix with the
 * delimiter after the prefix rolls up into the common prefix CP ending at
 * the delimiter's first occurrence; everything else named CP* rolls up into
 * the same CP and, since names sharing a prefix are contiguous in the index,
 * follows directly. So after emitting CP the walker steps a few more rows
 * and, if they are still under CP, seeks to succ(CP) (the smallest string
 * greater than every string starting with CP: CP with trailing 0xff bytes
 * dropped and its last byte incremented) instead of reading all of CP's
 * keys. A page of 1,000 common prefixes costs 1,000 index seeks, whatever
 * the number of keys under them.
 *
 * Entries (keys and common prefixes together) come out strictly ascending,
 * so "resume after entry E" is well defined. A marker M resumes after M:
 * the walk starts at M + "\0" (the next possible name), except when M is
 * itself a common prefix under this prefix/delimiter (v1 NextMarker or our
 * continuation token after a rolled-up prefix), in which case it starts at
 * succ(M) so that M's keys are not rolled up into M once more. The
 * continuation token is base64("1" + last entry): the same rule resumes it.
 *
 * The walker collects max + 1 entries: the extra one only tells that the
 * listing is truncated, so IsTruncated is exact (no empty last page), and
 * is dropped. All reads of one page run in one read transaction. */
#include "core/platform.h"
#include "s3meta/s3meta_int.h"

#include "core/util.h"

#define REQ_STR_MAX 4096 /* prefix, marker, delimiter: longer is InvalidArgument */
#define TOKEN_MAX 8192
#define PEEK_ROWS 4      /* rows stepped under a prefix before seeking past it */

enum walk_kind { WALK_OBJECTS, WALK_VERSIONS, WALK_UPLOADS };

struct walk {
	enum walk_kind kind;
	struct conn *c;
	sqlite3_stmt *st;
	int64_t bucket_id;
	const char *prefix, *delim;
	size_t plen, dlen;
	size_t want; /* max + 1 */
	struct s3meta_list *out;
	/* Versions/uploads: rows of skip_key at or before the id marker were
	 * returned already. */
	bool skip;
	const char *skip_key;
	size_t skip_klen;
	int64_t skip_seq;       /* versions: skip id >= skip_seq */
	const char *skip_uid;   /* uploads: skip upload_id <= skip_uid */
};

static bool starts_with(const uint8_t *s, size_t n, const char *p, size_t plen)
{
	return n >= plen && !memcmp(s, p, plen);
}

/* succ(s) in place: false if s is all 0xff (nothing sorts after it). */
static bool succ(uint8_t *s, size_t *n)
{
	while (*n && s[*n - 1] == 0xff)
		(*n)--;
	if (!*n)
		return false;
	s[*n - 1]++;
	return true;
}

/* Whether m is a common prefix of the walk: under the prefix, with the
 * first occurrence of the delimiter after the prefix ending at its end. */
static bool is_cp_form(const struct walk *w, const char *m, size_t mlen)
{
	if (!w->dlen || !starts_with((const uint8_t *)m, mlen, w->prefix, w->plen))
		return false;
	const char *d = memmem(m + w->plen, mlen - w->plen, w->delim, w->dlen);
	return d && (size_t)(d - m) + w->dlen == mlen;
}

static int seek(struct walk *w, const void *pos, size_t len)
{
	sqlite3_reset(w->st);
	sqlite3_bind_int64(w->st, 1, w->bucket_id);
	return sqlite3_bind_blob64(w->st, 2, len ? pos : "", len, SQLITE_TRANSIENT) == SQLITE_OK
		       ? 0
		       : -S3META_EINTERNAL;
}

static struct s3meta_entry *emit(struct walk *w, const uint8_t *name, size_t nlen)
{
	struct s3meta_entry *e = &w->out->v[w->out->n++];
	memset(e, 0, sizeof(*e));
	e->key = arena_strndup(&w->out->arena, (const char *)name, nlen);
	e->key_len = nlen;
	return e;
}

/* Turns the current row into an entry (or skips it). */
static void row(struct walk *w, const uint8_t *name, size_t nlen)
{
	sqlite3_stmt *st = w->st;
	struct s3meta_arena *a = &w->out->arena;
	struct s3meta_entry *e;
	switch (w->kind) {
	case WALK_OBJECTS:
		e = emit(w, name, nlen);
		e->is_latest = true;
		e->size = sqlite3_column_int64(st, 1);
		e->mtime_ms = sqlite3_column_int64(st, 2);
		e->etag = col_str(a, st, 3);
		e->owner = col_str(a, st, 4);
		e->cksum_algo = col_str(a, st, 5);
		break;
	case WALK_VERSIONS: {
		int64_t id = sqlite3_column_int64(st, 1);
		if (w->skip && nlen == w->skip_klen && !memcmp(name, w->skip_key, nlen) && id >= w->skip_seq)
			return;
		e = emit(w, name, nlen);
		vid_format(e->version_id, id, sqlite3_column_int(st, 2) != 0);
		e->is_latest = sqlite3_column_int(st, 3) != 0;
		e->delete_marker = sqlite3_column_int(st, 4) != 0;
		e->size = sqlite3_column_int64(st, 5);
		e->mtime_ms = sqlite3_column_int64(st, 6);
		e->etag = col_str(a, st, 7);
		e->owner = col_str(a, st, 8);
		e->cksum_algo = col_str(a, st, 9);
		break;
	}
	case WALK_UPLOADS: {
		const char *uid = (const char *)sqlite3_column_text(st, 1);
		if (w->skip && nlen == w->skip_klen && !memcmp(name, w->skip_key, nlen) &&
		    strcmp(uid, w->skip_uid) <= 0)
			return;
		e = emit(w, name, nlen);
		snprintf(e->upload_id, sizeof(e->upload_id), "%s", uid);
		e->mtime_ms = sqlite3_column_int64(st, 2);
		e->owner = col_str(a, st, 3);
		break;
	}
	}
}

static int walk_run(struct walk *w, const uint8_t *start, size_t start_len)
{
	uint8_t cp[REQ_STR_MAX + S3META_KEY_MAX + 8];
	int rc = seek(w, start, start_len);
	if (rc)
		return rc;
	bool have = false; /* a stepped row not yet processed */
	while (w->out->n < w->want) {
		if (!have) {
			int s = step(w->c, w->st);
			if (s == SQLITE_DONE)
				break;
			if (s != SQLITE_ROW)
				return sqlerr(s);
		}
		have = false;
		const uint8_t *name = sqlite3_column_blob(w->st, 0);
		size_t nlen = (size_t)sqlite3_column_bytes(w->st, 0);
		if (!starts_with(name, nlen, w->prefix, w->plen))
			break; /* past the prefix's range */
		const uint8_t *d = NULL;
		if (w->dlen)
			d = memmem(name + w->plen, nlen - w->plen, w->delim, w->dlen);
		if (!d) {
			row(w, name, nlen);
			continue;
		}
		size_t cplen = (size_t)(d - name) + w->dlen;
		memcpy(cp, name, cplen);
		struct s3meta_entry *e = emit(w, cp, cplen);
		e->is_prefix = true;
		if (w->out->n == w->want)
			break;
		/* Skip the rest of cp: a few steps (cheap when cp holds few
		 * names), then one seek. */
		int peek = 0;
		for (; peek < PEEK_ROWS; peek++) {
			int s = step(w->c, w->st);
			if (s == SQLITE_DONE)
				return 0;
			if (s != SQLITE_ROW)
				return sqlerr(s);
			name = sqlite3_column_blob(w->st, 0);
			nlen = (size_t)sqlite3_column_bytes(w->st, 0);
			if (!starts_with(name, nlen, (const char *)cp, cplen)) {
				have = true;
				break;
			}
		}
		if (have)
			continue;
		if (!succ(cp, &cplen))
			break;
		if ((rc = seek(w, cp, cplen)))
			return rc;
	}
	return 0;
}

static int req_str(const char *s, size_t *len)
{
	*len = s ? strnlen(s, REQ_STR_MAX + 1) : 0;
	return *len > REQ_STR_MAX ? -S3META_EINVALIDARGUMENT : 0;
}

void s3meta_list_destroy(struct s3meta_list *l)
{
	arena_free(&l->arena);
	memset(l, 0, sizeof(*l));
}

/* Sets the truncation fields from the collected entries. */
static void finish(struct walk *w, bool want_token)
{
	struct s3meta_list *l = w->out;
	if (l->n == w->want) {
		l->n--;
		l->truncated = true;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].is_prefix)
			l->n_prefixes++;
		else
			l->n_keys++;
	}
	if (!l->truncated || !l->n)
		return;
	const struct s3meta_entry *last = &l->v[l->n - 1];
	l->next_marker = last->key;
	if (!last->is_prefix) {
		if (w->kind == WALK_VERSIONS)
			l->next_id_marker = last->version_id;
		else if (w->kind == WALK_UPLOADS)
			l->next_id_marker = last->upload_id;
	}
	if (want_token) {
		uint8_t *raw = arena_alloc(&l->arena, last->key_len + 1);
		raw[0] = '1';
		memcpy(raw + 1, last->key, last->key_len);
		char *tok = arena_alloc(&l->arena, (last->key_len + 1 + 2) / 3 * 4 + 1);
		b64_enc(tok, raw, last->key_len + 1);
		l->next_token = tok;
	}
}

/* Decodes a continuation token into the marker it stands for (arena). */
static int token_decode(struct s3meta_arena *a, const char *tok, const char **marker)
{
	size_t n = strnlen(tok, TOKEN_MAX + 1);
	if (n == 0 || n > TOKEN_MAX)
		return -S3META_EINVALIDARGUMENT;
	uint8_t *raw = arena_alloc(a, n);
	long k = b64_dec(raw, n, tok, n);
	if (k < 1 || raw[0] != '1' || memchr(raw + 1, 0, (size_t)k - 1))
		return -S3META_EINVALIDARGUMENT;
	*marker = arena_strndup(a, (const char *)raw + 1, (size_t)k - 1);
	return 0;
}

/* Where the walk starts for an exclusive marker (NULL/"": the prefix). */
static void start_pos(const struct walk *w, const char *marker, uint8_t *buf, size_t *len, bool *empty)
{
	size_t mlen = marker ? strlen(marker) : 0;
	*empty = false;
	if (mlen && is_cp_form(w, marker, mlen)) {
		memcpy(buf, marker, mlen);
		*len = mlen;
		if (!succ(buf, len))
			*empty = true;
	} else if (mlen) {
		memcpy(buf, marker, mlen);
		buf[mlen] = 0;
		*len = mlen + 1;
	} else {
		*len = 0;
	}
	/* Never before the prefix. */
	size_t cmpn = SILT_MIN(*len, w->plen);
	int c = memcmp(buf, w->prefix, cmpn);
	if (c < 0 || (c == 0 && *len < w->plen)) {
		memcpy(buf, w->prefix, w->plen);
		*len = w->plen;
	}
}

static int list_run(struct s3meta *m, enum walk_kind kind, const char *bucket,
		    const struct s3meta_list_req *req, struct s3meta_list *out)
{
	struct walk w = { .kind = kind };
	size_t mlen, idlen;
	int rc;
	if ((rc = req_str(req->prefix, &w.plen)) || (rc = req_str(req->delimiter, &w.dlen)) ||
	    (rc = req_str(req->marker, &mlen)) || (rc = req_str(req->id_marker, &idlen)))
		return rc;
	w.prefix = w.plen ? req->prefix : "";
	w.delim = w.dlen ? req->delimiter : "";
	const char *marker = mlen ? req->marker : NULL;
	if (kind == WALK_OBJECTS && req->token) {
		if ((rc = token_decode(&out->arena, req->token, &marker)))
			return rc;
		if (strlen(marker) > REQ_STR_MAX + S3META_KEY_MAX)
			return -S3META_EINVALIDARGUMENT;
	}
	if (kind == WALK_VERSIONS && idlen && !marker)
		return -S3META_EINVALIDARGUMENT; /* version-id-marker needs key-marker */
	int max = req->max < 0 || req->max > S3META_LIST_MAX ? S3META_LIST_MAX : req->max;
	if (max == 0)
		return 0;
	w.want = (size_t)max + 1;
	out->v = arena_alloc(&out->arena, w.want * sizeof(*out->v));
	w.out = out;

	int64_t vseq = 0;
	int vkind = 0;
	if (kind == WALK_VERSIONS && idlen && (vkind = vid_parse(req->id_marker, &vseq)) < 0)
		return -S3META_EINVALIDARGUMENT;

	w.c = conn_get(m);
	if (!w.c)
		return -S3META_EINTERNAL;
	if ((rc = rbegin(w.c))) {
		conn_put(m, w.c);
		return rc;
	}
	struct bkt b;
	if ((rc = bkt_lookup(w.c, bucket, &b)))
		goto out;
	w.bucket_id = b.id;
	static const enum st_id sts[] = { ST_LIST_CUR, ST_LIST_VER, ST_LIST_UP };
	if (!(w.st = stmt(w.c, sts[kind]))) {
		rc = -S3META_EINTERNAL;
		goto out;
	}

	uint8_t startbuf[REQ_STR_MAX + S3META_KEY_MAX + 8];
	size_t slen;
	bool empty;
	start_pos(&w, marker, startbuf, &slen, &empty);
	/* An id marker resumes inside the marker's key: start at the key and
	 * skip what was returned already. */
	if (marker && idlen && kind != WALK_OBJECTS && !is_cp_form(&w, marker, strlen(marker)) &&
	    starts_with((const uint8_t *)marker, strlen(marker), w.prefix, w.plen)) {
		w.skip = true;
		w.skip_key = marker;
		w.skip_klen = strlen(marker);
		w.skip_uid = req->id_marker;
		w.skip_seq = vseq;
		if (vkind == 1) {
			/* "null": the null version's place in the key's list;
			 * without a null version the whole key is behind us. */
			sqlite3_stmt *st = stmt(w.c, ST_VER_NULL);
			if (!st) {
				rc = -S3META_EINTERNAL;
				goto out;
			}
			sqlite3_bind_int64(st, 1, b.id);
			bind_blob(st, 2, marker, w.skip_klen);
			int s = step(w.c, st);
			w.skip_seq = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : INT64_MIN;
			sqlite3_reset(st);
			if (s != SQLITE_ROW && s != SQLITE_DONE) {
				rc = sqlerr(s);
				goto out;
			}
		}
		memcpy(startbuf, marker, w.skip_klen);
		slen = w.skip_klen;
	}
	if (!empty)
		rc = walk_run(&w, startbuf, slen);
	sqlite3_reset(w.st);
	if (!rc)
		finish(&w, kind == WALK_OBJECTS);
out:
	rend(w.c);
	conn_put(m, w.c);
	return rc;
}

static int list_common(struct s3meta *m, enum walk_kind kind, const char *bucket,
		       const struct s3meta_list_req *req, struct s3meta_list *out)
{
	memset(out, 0, sizeof(*out));
	int rc = list_run(m, kind, bucket, req, out);
	if (rc)
		s3meta_list_destroy(out);
	return rc;
}

int s3meta_list_objects(struct s3meta *m, const char *bucket, const struct s3meta_list_req *req,
			struct s3meta_list *out)
{
	return list_common(m, WALK_OBJECTS, bucket, req, out);
}

int s3meta_list_versions(struct s3meta *m, const char *bucket, const struct s3meta_list_req *req,
			 struct s3meta_list *out)
{
	return list_common(m, WALK_VERSIONS, bucket, req, out);
}

int s3meta_list_uploads(struct s3meta *m, const char *bucket, const struct s3meta_list_req *req,
			struct s3meta_list *out)
{
	return list_common(m, WALK_UPLOADS, bucket, req, out);
}

int s3meta_mpu_list_abandoned(struct s3meta *m, int64_t age_ms, size_t max, struct s3meta_list *out)
{
	memset(out, 0, sizeof(*out));
	if (max == 0)
		return 0;
	if (max > 100000)
		max = 100000;
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	int rc;
	sqlite3_stmt *st = stmt(c, ST_UP_OLD);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	out->v = arena_alloc(&out->arena, max * sizeof(*out->v));
	sqlite3_bind_int64(st, 1, now_ms() - age_ms);
	sqlite3_bind_int64(st, 2, (int64_t)max);
	while ((rc = step(c, st)) == SQLITE_ROW) {
		struct s3meta_entry *e = &out->v[out->n++];
		memset(e, 0, sizeof(*e));
		e->bucket = col_str(&out->arena, st, 0);
		e->key_len = (size_t)sqlite3_column_bytes(st, 1);
		e->key = arena_strndup(&out->arena, sqlite3_column_blob(st, 1), e->key_len);
		snprintf(e->upload_id, sizeof(e->upload_id), "%s", (const char *)sqlite3_column_text(st, 2));
		e->mtime_ms = sqlite3_column_int64(st, 3);
		e->owner = col_str(&out->arena, st, 4);
		out->n_keys++;
	}
	sqlite3_reset(st);
	rc = sqlerr(rc);
out:
	conn_put(m, c);
	if (rc)
		s3meta_list_destroy(out);
	return rc;
}
