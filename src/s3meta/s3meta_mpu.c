/* s3meta_mpu.c - multipart uploads: create, parts, complete, abort, list
 * parts. (ListMultipartUploads and the abandoned-upload scan are listings,
 * in s3meta_list.c.) */
#include "core/platform.h"
#include "s3meta/s3meta_int.h"

#include "core/crc.h"
#include "core/util.h"
#include "core/wbuf.h"

#include <openssl/evp.h>
#include <sys/random.h>

/* The upload row, and (when `a` is given) the attributes the final object
 * will carry, as a s3meta_put whose strings live in `a`. */
struct uprow {
	int64_t id;
	int64_t initiated_ms;
	const char *owner, *cksum_algo;
	struct s3meta_put attrs;
};

/* NoSuchBucket, NoSuchUpload (unknown id, or an upload of another
 * bucket/key), or 0. */
static int up_lookup(struct conn *c, const char *bucket, const char *key, size_t klen, const char *upload_id,
		     struct bkt *b, struct uprow *u, struct s3meta_arena *a)
{
	memset(u, 0, sizeof(*u));
	int rc = bkt_lookup(c, bucket, b);
	if (rc)
		return rc;
	if (!upload_id || strlen(upload_id) != S3META_UPLOAD_ID_SIZE - 1)
		return -S3META_ENOSUCHUPLOAD;
	sqlite3_stmt *st = stmt(c, ST_UP_GET);
	if (!st)
		return -S3META_EINTERNAL;
	bind_str(st, 1, upload_id);
	int s = step(c, st);
	if (s != SQLITE_ROW) {
		sqlite3_reset(st);
		return s == SQLITE_DONE ? -S3META_ENOSUCHUPLOAD : sqlerr(s);
	}
	if (sqlite3_column_int64(st, 1) != b->id || (size_t)sqlite3_column_bytes(st, 2) != klen ||
	    memcmp(sqlite3_column_blob(st, 2), key, klen)) {
		sqlite3_reset(st);
		return -S3META_ENOSUCHUPLOAD;
	}
	u->id = sqlite3_column_int64(st, 0);
	u->initiated_ms = sqlite3_column_int64(st, 3);
	if (a) {
		struct s3meta_put *p = &u->attrs;
		u->owner = p->owner = col_str(a, st, 4);
		p->content_type = col_str(a, st, 5);
		p->cache_control = col_str(a, st, 6);
		p->content_disposition = col_str(a, st, 7);
		p->content_encoding = col_str(a, st, 8);
		p->content_language = col_str(a, st, 9);
		p->expires = col_str(a, st, 10);
		p->user_meta_len = (size_t)sqlite3_column_bytes(st, 11);
		if (p->user_meta_len) {
			uint8_t *um = arena_alloc(a, p->user_meta_len);
			memcpy(um, sqlite3_column_blob(st, 11), p->user_meta_len);
			p->user_meta = um;
		}
		u->cksum_algo = p->cksum_algo = col_str(a, st, 12);
	}
	sqlite3_reset(st);
	return 0;
}

static void random_hex(char *out, size_t nbytes)
{
	uint8_t r[32];
	size_t got = 0;
	while (got < nbytes) {
		ssize_t k = getrandom(r + got, nbytes - got, 0);
		if (k > 0)
			got += (size_t)k;
		else if (errno != EINTR)
			abort(); /* no entropy source: nothing sensible to do */
	}
	for (size_t i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

int s3meta_mpu_create(struct s3meta *m, const char *bucket, const char *key, const struct s3meta_put *p,
		      char *upload_id)
{
	upload_id[0] = '\0';
	size_t klen;
	int rc = key_check(key, &klen);
	if (rc)
		return rc;
	if (p->user_meta_len > S3META_USER_META_MAX)
		return -S3META_EMETADATATOOLARGE;
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	if ((rc = wbegin(m, c))) {
		conn_put(m, c);
		return rc;
	}
	struct bkt b;
	char uid[S3META_UPLOAD_ID_SIZE];
	if ((rc = bkt_lookup(c, bucket, &b)))
		goto out;
	sqlite3_stmt *st = stmt(c, ST_UP_INS);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	/* Time first, so upload ids of a key sort by initiation, as
	 * ListMultipartUploads orders them; random second, so they cannot be
	 * guessed. */
	int64_t id = next_seq(m);
	snprintf(uid, sizeof(uid), "%016" PRIx64, (uint64_t)id);
	random_hex(uid + 16, 8);
	sqlite3_bind_int64(st, 1, id);
	bind_str(st, 2, uid);
	sqlite3_bind_int64(st, 3, b.id);
	bind_blob(st, 4, key, klen);
	sqlite3_bind_int64(st, 5, p->mtime_ms ? p->mtime_ms : now_ms());
	bind_str(st, 6, p->owner);
	bind_str(st, 7, p->content_type);
	bind_str(st, 8, p->cache_control);
	bind_str(st, 9, p->content_disposition);
	bind_str(st, 10, p->content_encoding);
	bind_str(st, 11, p->content_language);
	bind_str(st, 12, p->expires);
	if (p->user_meta_len)
		bind_blob(st, 13, p->user_meta, p->user_meta_len);
	bind_str(st, 14, p->cksum_algo);
	rc = exec_done(c, st);
out:
	rc = wend(m, c, rc);
	conn_put(m, c);
	if (rc == 0)
		memcpy(upload_id, uid, sizeof(uid));
	return rc;
}

int s3meta_mpu_put_part(struct s3meta *m, const char *bucket, const char *key, const char *upload_id,
			const struct s3meta_part_put *pp, struct s3meta_locs *freed)
{
	size_t klen;
	int rc = key_check(key, &klen);
	if (rc)
		return rc;
	if (pp->part_number < 1 || pp->part_number > S3META_PART_MAX || pp->size < 0 || !pp->etag)
		return -S3META_EINVALIDARGUMENT;
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	if ((rc = wbegin(m, c))) {
		conn_put(m, c);
		return rc;
	}
	struct s3meta_locs staged = { 0 };
	struct bkt b;
	struct uprow u;
	if ((rc = up_lookup(c, bucket, key, klen, upload_id, &b, &u, NULL)))
		goto out;
	sqlite3_stmt *st = stmt(c, ST_PART_GET);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	sqlite3_bind_int64(st, 1, u.id);
	sqlite3_bind_int(st, 2, pp->part_number);
	int s = step(c, st);
	if (s == SQLITE_ROW)
		locs_add(&staged, sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4));
	sqlite3_reset(st);
	if (s != SQLITE_ROW && s != SQLITE_DONE) {
		rc = sqlerr(s);
		goto out;
	}
	if (!(st = stmt(c, ST_PART_PUT))) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	sqlite3_bind_int64(st, 1, u.id);
	sqlite3_bind_int(st, 2, pp->part_number);
	sqlite3_bind_int64(st, 3, pp->size);
	bind_str(st, 4, pp->etag);
	bind_str(st, 5, pp->cksum_value);
	sqlite3_bind_int64(st, 6, pp->mtime_ms ? pp->mtime_ms : now_ms());
	if (pp->locator_len)
		bind_blob(st, 7, pp->locator, pp->locator_len);
	rc = exec_done(c, st);
out:
	rc = wend(m, c, rc);
	conn_put(m, c);
	locs_commit(&staged, freed, rc);
	return rc;
}

/* Every part of the upload in order: locators to `locs` unless the part
 * number is in used[0..nused) (ascending). */
static int parts_release(struct conn *c, int64_t up, const struct s3meta_part_ref *used, size_t nused,
			 struct s3meta_locs *locs)
{
	sqlite3_stmt *st = stmt(c, ST_PART_LIST);
	if (!st)
		return -S3META_EINTERNAL;
	sqlite3_bind_int64(st, 1, up);
	sqlite3_bind_int(st, 2, 0);
	size_t j = 0;
	int s;
	while ((s = step(c, st)) == SQLITE_ROW) {
		int pn = sqlite3_column_int(st, 0);
		while (j < nused && used[j].part_number < pn)
			j++;
		if (j < nused && used[j].part_number == pn)
			continue;
		locs_add(locs, sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st, 5));
	}
	sqlite3_reset(st);
	if (s != SQLITE_DONE)
		return sqlerr(s);
	if (!(st = stmt(c, ST_PART_DEL_ALL)))
		return -S3META_EINTERNAL;
	sqlite3_bind_int64(st, 1, up);
	int rc = exec_done(c, st);
	if (rc)
		return rc;
	if (!(st = stmt(c, ST_UP_DEL)))
		return -S3META_EINTERNAL;
	sqlite3_bind_int64(st, 1, up);
	return exec_done(c, st);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static bool md5_from_hex(const char *s, size_t n, uint8_t out[16])
{
	if (n != 32)
		return false;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* The client's ETag without the quotes it usually carries. */
static void etag_view(const char *e, const char **p, size_t *n)
{
	*p = e ? e : "";
	*n = strlen(*p);
	if (*n >= 2 && (*p)[0] == '"' && (*p)[*n - 1] == '"') {
		(*p)++;
		*n -= 2;
	}
}

/* S3's composite checksum of a multipart object: the checksum of the
 * concatenated binary part checksums, base64, "-N". Only the algorithms
 * S3 computes composites for; false (no checksum) otherwise. */
static bool composite_cksum(const char *algo, const uint8_t *cat, size_t len, size_t nparts, char *out,
			    size_t outsz)
{
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	if (!strcmp(algo, "CRC32") || !strcmp(algo, "CRC32C")) {
		uint32_t v = algo[5] == 'C' ? crc32c(0, cat, len) : crc32_std(0, cat, len);
		d[0] = (uint8_t)(v >> 24), d[1] = (uint8_t)(v >> 16), d[2] = (uint8_t)(v >> 8), d[3] = (uint8_t)v;
		dl = 4;
	} else if (!strcmp(algo, "SHA1") || !strcmp(algo, "SHA256")) {
		if (!EVP_Digest(cat, len, d, &dl, algo[3] == '1' ? EVP_sha1() : EVP_sha256(), NULL))
			return false;
	} else {
		return false;
	}
	if (outsz < (dl + 2) / 3 * 4 + 8)
		return false;
	size_t k = b64_enc(out, d, dl);
	snprintf(out + k, outsz - k, "-%zu", nparts);
	return true;
}

struct used_part {
	int64_t size;
	uint8_t md5[16];
	uint8_t ck[64];
	int cklen; /* -1: no checksum */
};

int s3meta_mpu_complete(struct s3meta *m, const char *bucket, const char *key, const char *upload_id,
			const struct s3meta_part_ref *parts, size_t n, int64_t mtime_ms,
			struct s3meta_complete *out, struct s3meta_locs *freed)
{
	memset(out, 0, sizeof(*out));
	size_t klen;
	int rc = key_check(key, &klen);
	if (rc)
		return rc;
	if (n == 0 || n > S3META_PART_MAX)
		return -S3META_EMALFORMEDXML;
	for (size_t i = 0; i < n; i++) {
		if (parts[i].part_number < 1 || parts[i].part_number > S3META_PART_MAX)
			return -S3META_EINVALIDPART;
		if (i && parts[i].part_number <= parts[i - 1].part_number)
			return -S3META_EINVALIDPARTORDER;
	}
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	if ((rc = wbegin(m, c))) {
		conn_put(m, c);
		return rc;
	}
	struct s3meta_locs staged = { 0 };
	struct s3meta_arena a = { 0 };
	struct wbuf loc, cat;
	wbuf_init(&loc, 256, 0);
	wbuf_init(&cat, 64, 0);
	struct bkt b;
	struct uprow u;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_md5(), NULL)) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	if ((rc = up_lookup(c, bucket, key, klen, upload_id, &b, &u, &a)))
		goto out;
	bool all_ck = u.cksum_algo != NULL;
	int64_t total = 0;
	wbuf_u8(&loc, 'M');
	wbuf_uvarint(&loc, n);
	sqlite3_stmt *st = stmt(c, ST_PART_GET);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, u.id);
		sqlite3_bind_int(st, 2, parts[i].part_number);
		int s = step(c, st);
		if (s != SQLITE_ROW) {
			rc = s == SQLITE_DONE ? -S3META_EINVALIDPART : sqlerr(s);
			break;
		}
		int64_t size = sqlite3_column_int64(st, 0);
		const char *etag = (const char *)sqlite3_column_text(st, 1);
		const char *ce;
		size_t cen;
		uint8_t bin[16];
		etag_view(parts[i].etag, &ce, &cen);
		if (strlen(etag) != cen || strncasecmp(etag, ce, cen)) {
			rc = -S3META_EINVALIDPART;
			break;
		}
		if (i + 1 < n && size < m->min_part_size) {
			rc = -S3META_EENTITYTOOSMALL;
			break;
		}
		if (!md5_from_hex(etag, strlen(etag), bin)) {
			rc = -S3META_EINVALIDPART; /* a part ETag that is no MD5 */
			break;
		}
		EVP_DigestUpdate(md, bin, 16);
		if (all_ck) {
			const char *cv = (const char *)sqlite3_column_text(st, 2);
			uint8_t ck[64];
			long ckn = cv ? b64_dec(ck, sizeof(ck), cv, strlen(cv)) : -1;
			if (ckn > 0)
				wbuf_put(&cat, ck, (size_t)ckn);
			else
				all_ck = false;
		}
		size_t ln = (size_t)sqlite3_column_bytes(st, 4);
		wbuf_uvarint(&loc, (uint64_t)size);
		wbuf_uvarint(&loc, ln);
		wbuf_put(&loc, sqlite3_column_blob(st, 4), ln);
		total += size;
	}
	sqlite3_reset(st);
	if (rc)
		goto out;

	uint8_t dig[16];
	unsigned dl = 0;
	if (!EVP_DigestFinal_ex(md, dig, &dl) || dl != 16) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	for (int i = 0; i < 16; i++)
		snprintf(out->etag + 2 * i, 3, "%02x", dig[i]);
	snprintf(out->etag + 32, sizeof(out->etag) - 32, "-%zu", n);
	char ckbuf[128];
	u.attrs.cksum_value = NULL;
	if (all_ck && composite_cksum(u.cksum_algo, cat.p, cat.len, n, ckbuf, sizeof(ckbuf)))
		u.attrs.cksum_value = ckbuf;
	else
		u.attrs.cksum_algo = NULL;
	u.attrs.size = total;
	u.attrs.etag = out->etag;
	u.attrs.mtime_ms = mtime_ms;
	out->size = total;

	if ((rc = parts_release(c, u.id, parts, n, &staged)))
		goto out;
	struct ver_new vn = { .p = &u.attrs, .parts = (int)n, .locator = loc.p, .locator_len = loc.len };
	rc = ver_put(m, c, &b, key, klen, &vn, out->version_id, &staged);
out:
	rc = wend(m, c, rc);
	conn_put(m, c);
	locs_commit(&staged, freed, rc);
	EVP_MD_CTX_free(md);
	wbuf_destroy(&loc);
	wbuf_destroy(&cat);
	arena_free(&a);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

int s3meta_mpu_abort(struct s3meta *m, const char *bucket, const char *key, const char *upload_id,
		     struct s3meta_locs *freed)
{
	size_t klen;
	int rc = key_check(key, &klen);
	if (rc)
		return rc;
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	if ((rc = wbegin(m, c))) {
		conn_put(m, c);
		return rc;
	}
	struct s3meta_locs staged = { 0 };
	struct bkt b;
	struct uprow u;
	if (!(rc = up_lookup(c, bucket, key, klen, upload_id, &b, &u, NULL)))
		rc = parts_release(c, u.id, NULL, 0, &staged);
	rc = wend(m, c, rc);
	conn_put(m, c);
	locs_commit(&staged, freed, rc);
	return rc;
}

void s3meta_parts_destroy(struct s3meta_parts *p)
{
	arena_free(&p->arena);
	memset(p, 0, sizeof(*p));
}

int s3meta_mpu_list_parts(struct s3meta *m, const char *bucket, const char *key, const char *upload_id,
			  int marker, int max, struct s3meta_parts *out)
{
	memset(out, 0, sizeof(*out));
	size_t klen;
	int rc = key_check(key, &klen);
	if (rc)
		return rc;
	if (marker < 0)
		return -S3META_EINVALIDARGUMENT;
	if (max < 0 || max > S3META_LIST_MAX)
		max = S3META_LIST_MAX;
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	if ((rc = rbegin(c))) {
		conn_put(m, c);
		return rc;
	}
	struct bkt b;
	struct uprow u;
	if ((rc = up_lookup(c, bucket, key, klen, upload_id, &b, &u, &out->arena)))
		goto out;
	out->owner = u.owner;
	out->initiated_ms = u.initiated_ms;
	out->cksum_algo = u.cksum_algo;
	out->v = arena_alloc(&out->arena, ((size_t)max + 1) * sizeof(*out->v));
	sqlite3_stmt *st = stmt(c, ST_PART_LIST);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	sqlite3_bind_int64(st, 1, u.id);
	sqlite3_bind_int(st, 2, marker);
	int s = SQLITE_DONE;
	while (out->n < (size_t)max && (s = step(c, st)) == SQLITE_ROW) {
		struct s3meta_part *p = &out->v[out->n++];
		p->part_number = sqlite3_column_int(st, 0);
		p->size = sqlite3_column_int64(st, 1);
		p->etag = col_str(&out->arena, st, 2);
		p->cksum_value = col_str(&out->arena, st, 3);
		p->mtime_ms = sqlite3_column_int64(st, 4);
	}
	if (s == SQLITE_ROW && max > 0) {
		/* One more row tells whether the list goes on. */
		s = step(c, st);
		out->truncated = s == SQLITE_ROW;
		if (out->truncated)
			s = SQLITE_DONE;
	}
	sqlite3_reset(st);
	if (s != SQLITE_DONE && s != SQLITE_ROW)
		rc = sqlerr(s);
	if (out->truncated)
		out->next_marker = out->v[out->n - 1].part_number;
out:
	rend(c);
	conn_put(m, c);
	if (rc) {
		s3meta_parts_destroy(out);
	}
	return rc;
}
