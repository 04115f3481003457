/* s3meta_obj.c - object versions: put, get, delete, following the bucket's
 * versioning state (see s3meta.h for the rules). */
#include "core/platform.h"
#include "s3meta/s3meta_int.h"

#include "core/util.h"

/* What a mutation needs to know about an existing version row (and which
 * key it belongs to, for the read cache). */
struct vrow {
	bool found;
	int64_t id;
	bool is_null, latest, dm;
	int64_t size;
	int64_t bucket_id;
	const char *key;
	size_t klen;
};

static uint8_t *obj_flatten(const struct s3meta_obj *src, size_t *len);

/* VER_COLS order, see s3meta.c. */
enum {
	VC_ID, VC_IS_NULL, VC_LATEST, VC_DM, VC_SIZE, VC_MTIME, VC_ETAG, VC_OWNER, VC_CTYPE,
	VC_CACHE, VC_DISP, VC_ENC, VC_LANG, VC_EXPIRES, VC_UMETA, VC_CKALGO, VC_CKVAL, VC_PARTS,
	VC_LOCATOR
};

/* Reads one row with statement `id` (VER_LATEST, VER_NULL or VER_BY_ID with
 * seq). When the row exists: its locator is copied to `locs` (if given),
 * and everything to `o` (if given). */
static int vrow_read(struct conn *c, enum st_id id, int64_t bucket_id, const char *key, size_t klen,
		     int64_t seq, struct vrow *r, struct s3meta_locs *locs, struct s3meta_obj *o)
{
	memset(r, 0, sizeof(*r));
	sqlite3_stmt *st = stmt(c, id);
	if (!st)
		return -S3META_EINTERNAL;
	sqlite3_bind_int64(st, 1, bucket_id);
	bind_blob(st, 2, key, klen);
	if (id == ST_VER_BY_ID)
		sqlite3_bind_int64(st, 3, seq);
	int rc = step(c, st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? 0 : sqlerr(rc);
	}
	r->found = true;
	r->bucket_id = bucket_id;
	r->key = key;
	r->klen = klen;
	r->id = sqlite3_column_int64(st, VC_ID);
	r->is_null = sqlite3_column_int(st, VC_IS_NULL) != 0;
	r->latest = sqlite3_column_int(st, VC_LATEST) != 0;
	r->dm = sqlite3_column_int(st, VC_DM) != 0;
	r->size = sqlite3_column_int64(st, VC_SIZE);
	if (locs)
		locs_add(locs, sqlite3_column_blob(st, VC_LOCATOR), (size_t)sqlite3_column_bytes(st, VC_LOCATOR));
	if (o) {
		struct s3meta_arena *a = &o->arena;
		vid_format(o->version_id, r->id, r->is_null);
		o->is_latest = r->latest;
		o->delete_marker = r->dm;
		o->size = r->size;
		o->mtime_ms = sqlite3_column_int64(st, VC_MTIME);
		o->parts_count = sqlite3_column_int(st, VC_PARTS);
		o->etag = col_str(a, st, VC_ETAG);
		o->owner = col_str(a, st, VC_OWNER);
		o->content_type = col_str(a, st, VC_CTYPE);
		o->cache_control = col_str(a, st, VC_CACHE);
		o->content_disposition = col_str(a, st, VC_DISP);
		o->content_encoding = col_str(a, st, VC_ENC);
		o->content_language = col_str(a, st, VC_LANG);
		o->expires = col_str(a, st, VC_EXPIRES);
		o->cksum_algo = col_str(a, st, VC_CKALGO);
		o->cksum_value = col_str(a, st, VC_CKVAL);
		o->user_meta_len = (size_t)sqlite3_column_bytes(st, VC_UMETA);
		if (o->user_meta_len) {
			uint8_t *p = arena_alloc(a, o->user_meta_len);
			memcpy(p, sqlite3_column_blob(st, VC_UMETA), o->user_meta_len);
			o->user_meta = p;
		}
		o->locator_len = (size_t)sqlite3_column_bytes(st, VC_LOCATOR);
		if (o->locator_len) {
			uint8_t *p = arena_alloc(a, o->locator_len);
			memcpy(p, sqlite3_column_blob(st, VC_LOCATOR), o->locator_len);
			o->locator = p;
		}
	}
	sqlite3_reset(st);
	return 0;
}

static int vrow_delete(struct conn *c, const struct vrow *r, struct usage_delta *d)
{
	sqlite3_stmt *st = stmt(c, ST_VER_DEL);
	if (!st)
		return -S3META_EINTERNAL;
	rc_note_object(c, r->bucket_id, r->key, r->klen);
	sqlite3_bind_int64(st, 1, r->id);
	if (!r->dm) {
		d->versions--;
		d->version_bytes -= r->size;
		if (r->latest) {
			d->objects--;
			d->bytes -= r->size;
		}
	}
	return exec_done(c, st);
}

static int vrow_set_latest(struct conn *c, const struct vrow *r, bool latest, struct usage_delta *d)
{
	sqlite3_stmt *st = stmt(c, ST_VER_SET_LATEST);
	if (!st)
		return -S3META_EINTERNAL;
	rc_note_object(c, r->bucket_id, r->key, r->klen);
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_int(st, 2, latest);
	if (!r->dm) {
		d->objects += latest ? 1 : -1;
		d->bytes += latest ? r->size : -r->size;
	}
	return exec_done(c, st);
}

/* Makes room for a new latest version of key: removes the null version if
 * the new one will be null (its data to `staged`), and takes the latest
 * flag off the current latest version. In a bucket that was never
 * versioned the null version is the key's only one, so nothing is left to
 * look for once it is gone. */
static int make_room(struct conn *c, const struct bkt *b, const char *key, size_t klen, bool new_is_null,
		     struct usage_delta *d, struct s3meta_locs *staged)
{
	int64_t bucket_id = b->id;
	struct vrow r;
	int rc;
	if (new_is_null) {
		if ((rc = vrow_read(c, ST_VER_NULL, bucket_id, key, klen, 0, &r, staged, NULL)))
			return rc;
		if (r.found && (rc = vrow_delete(c, &r, d)))
			return rc;
		if (b->versioning == S3META_UNVERSIONED)
			return 0;
	}
	if ((rc = vrow_read(c, ST_VER_LATEST, bucket_id, key, klen, 0, &r, NULL, NULL)))
		return rc;
	if (r.found && r.latest)
		rc = vrow_set_latest(c, &r, false, d);
	return rc;
}

static int vrow_insert(struct s3meta *m, struct conn *c, int64_t bucket_id, const char *key, size_t klen,
		       bool is_null, bool dm, const struct ver_new *vn, int64_t *id_out, struct usage_delta *d)
{
	sqlite3_stmt *st = stmt(c, ST_VER_INS);
	if (!st)
		return -S3META_EINTERNAL;
	rc_note_object(c, bucket_id, key, klen);
	int64_t id = next_seq(m);
	const struct s3meta_put *p = vn->p;
	int64_t size = dm ? 0 : p->size;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, bucket_id);
	bind_blob(st, 3, key, klen);
	sqlite3_bind_int(st, 4, is_null);
	sqlite3_bind_int(st, 5, 1);
	sqlite3_bind_int(st, 6, dm);
	sqlite3_bind_int64(st, 7, size);
	int64_t mtime = p->mtime_ms ? p->mtime_ms : now_ms();
	sqlite3_bind_int64(st, 8, mtime);
	bind_str(st, 9, p->etag);
	bind_str(st, 10, p->owner);
	bind_str(st, 11, p->content_type);
	bind_str(st, 12, p->cache_control);
	bind_str(st, 13, p->content_disposition);
	bind_str(st, 14, p->content_encoding);
	bind_str(st, 15, p->content_language);
	bind_str(st, 16, p->expires);
	if (p->user_meta_len)
		bind_blob(st, 17, p->user_meta, p->user_meta_len);
	bind_str(st, 18, p->cksum_algo);
	bind_str(st, 19, p->cksum_value);
	sqlite3_bind_int(st, 20, vn->parts);
	if (vn->locator_len)
		bind_blob(st, 21, vn->locator, vn->locator_len);
	if (!dm) {
		d->objects++;
		d->bytes += size;
		d->versions++;
		d->version_bytes += size;
	}
	*id_out = id;
	int rc = exec_done(c, st);
	if (rc == 0) {
		/* The row as s3meta_object_get will read it back, for the cache
		 * to hold once this transaction committed. */
		struct s3meta_obj o = {
			.is_latest = true,
			.delete_marker = dm,
			.size = size,
			.mtime_ms = mtime,
			.parts_count = vn->parts,
			.etag = p->etag,
			.owner = p->owner,
			.content_type = p->content_type,
			.cache_control = p->cache_control,
			.content_disposition = p->content_disposition,
			.content_encoding = p->content_encoding,
			.content_language = p->content_language,
			.expires = p->expires,
			.cksum_algo = p->cksum_algo,
			.cksum_value = p->cksum_value,
			.user_meta = p->user_meta_len ? p->user_meta : NULL,
			.user_meta_len = p->user_meta_len,
			.locator = vn->locator_len ? vn->locator : NULL,
			.locator_len = vn->locator_len,
		};
		vid_format(o.version_id, id, is_null);
		uint8_t ck[1 + 8 + S3META_KEY_MAX];
		size_t cklen = rc_object_key(ck, bucket_id, key, klen);
		if (cklen) {
			size_t vlen;
			uint8_t *v = obj_flatten(&o, &vlen);
			rc_note_row(c, ck, cklen, v, vlen);
			free(v);
		}
	}
	return rc;
}

static int put_check(const struct s3meta_put *p)
{
	if (p->size < 0 || p->user_meta_len > S3META_USER_META_MAX)
		return p->size < 0 ? -S3META_EINVALIDARGUMENT : -S3META_EMETADATATOOLARGE;
	return 0;
}

int ver_put(struct s3meta *m, struct conn *c, const struct bkt *b, const char *key, size_t klen,
	    const struct ver_new *vn, char *version_id, struct s3meta_locs *freed)
{
	bool is_null = b->versioning != S3META_VERSIONING_ENABLED;
	struct usage_delta d = { 0 };
	int64_t id;
	int rc = make_room(c, b, key, klen, is_null, &d, freed);
	if (!rc)
		rc = vrow_insert(m, c, b->id, key, klen, is_null, false, vn, &id, &d);
	if (!rc)
		rc = usage_apply(c, b->id, &d);
	if (!rc && version_id) {
		if (b->versioning == S3META_UNVERSIONED)
			version_id[0] = '\0';
		else
			vid_format(version_id, id, is_null);
	}
	return rc;
}

/* Moves staged locators to the caller's list once the transaction
 * committed; drops them otherwise. */
void locs_commit(struct s3meta_locs *staged, struct s3meta_locs *freed, int rc)
{
	if (rc == 0 && freed) {
		for (size_t i = 0; i < staged->n; i++) {
			if (freed->n == freed->cap) {
				freed->cap = freed->cap ? freed->cap * 2 : 8;
				freed->v = xrealloc(freed->v, freed->cap * sizeof(*freed->v));
			}
			freed->v[freed->n++] = staged->v[i];
			staged->v[i].p = NULL;
		}
		staged->n = 0;
	}
	s3meta_locs_destroy(staged);
}

int s3meta_object_put_many(struct s3meta *m, const char *bucket, size_t n, const char *const *keys,
			   const struct s3meta_put *puts, struct s3meta_locs *freed)
{
	for (size_t i = 0; i < n; i++) {
		size_t klen;
		int rc = key_check(keys[i], &klen);
		if (rc || (rc = put_check(&puts[i])))
			return rc;
	}
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	int rc = wbegin(m, c);
	if (rc) {
		conn_put(m, c);
		return rc;
	}
	struct s3meta_locs staged = { 0 };
	struct bkt b;
	if ((rc = bkt_lookup(c, bucket, &b)))
		goto out;
	for (size_t i = 0; i < n && !rc; i++) {
		struct ver_new vn = { .p = &puts[i], .locator = puts[i].locator, .locator_len = puts[i].locator_len };
		rc = ver_put(m, c, &b, keys[i], strlen(keys[i]), &vn, NULL, &staged);
	}
out:
	rc = wend(m, c, rc);
	conn_put(m, c);
	locs_commit(&staged, freed, rc);
	return rc;
}

int s3meta_object_put(struct s3meta *m, const char *bucket, const char *key, const struct s3meta_put *p,
		      char *version_id, struct s3meta_locs *freed)
{
	if (version_id)
		version_id[0] = '\0';
	size_t klen;
	int rc = key_check(key, &klen);
	if (rc || (rc = put_check(p)))
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
	if ((rc = bkt_lookup(c, bucket, &b)))
		goto out;
	struct ver_new vn = { .p = p, .locator = p->locator, .locator_len = p->locator_len };
	rc = ver_put(m, c, &b, key, klen, &vn, version_id, &staged);
out:
	rc = wend(m, c, rc);
	conn_put(m, c);
	locs_commit(&staged, freed, rc);
	return rc;
}

void s3meta_obj_destroy(struct s3meta_obj *o)
{
	arena_free(&o->arena);
	memset(o, 0, sizeof(*o));
}

/* The read cache keeps a latest version as one flat copy of struct
 * s3meta_obj followed by its strings and blobs, the pointers stored as
 * offsets from the copy's start (0 for NULL). */
static const size_t obj_str_offs[] = {
	offsetof(struct s3meta_obj, etag), offsetof(struct s3meta_obj, owner),
	offsetof(struct s3meta_obj, content_type), offsetof(struct s3meta_obj, cache_control),
	offsetof(struct s3meta_obj, content_disposition), offsetof(struct s3meta_obj, content_encoding),
	offsetof(struct s3meta_obj, content_language), offsetof(struct s3meta_obj, expires),
	offsetof(struct s3meta_obj, cksum_algo), offsetof(struct s3meta_obj, cksum_value),
};
#define OBJ_NSTR (sizeof(obj_str_offs) / sizeof(obj_str_offs[0]))

static const char **obj_str_at(struct s3meta_obj *o, size_t i)
{
	return (const char **)(void *)((char *)o + obj_str_offs[i]);
}

static uint8_t *obj_flatten(const struct s3meta_obj *src, size_t *len)
{
	struct s3meta_obj o = *src;
	size_t total = sizeof(o), slen[OBJ_NSTR];
	for (size_t i = 0; i < OBJ_NSTR; i++) {
		const char *sp = *obj_str_at(&o, i);
		slen[i] = sp ? strlen(sp) + 1 : 0;
		total += slen[i];
	}
	total += o.user_meta_len + o.locator_len;
	uint8_t *buf = xmalloc(total);
	size_t at = sizeof(o);
	for (size_t i = 0; i < OBJ_NSTR; i++) {
		const char **sp = obj_str_at(&o, i);
		if (*sp) {
			memcpy(buf + at, *sp, slen[i]);
			*sp = (const char *)(uintptr_t)at;
			at += slen[i];
		}
	}
	if (o.user_meta_len) {
		memcpy(buf + at, o.user_meta, o.user_meta_len);
		o.user_meta = (const uint8_t *)(uintptr_t)at;
		at += o.user_meta_len;
	} else {
		o.user_meta = NULL;
	}
	if (o.locator_len) {
		memcpy(buf + at, o.locator, o.locator_len);
		o.locator = (const uint8_t *)(uintptr_t)at;
		at += o.locator_len;
	} else {
		o.locator = NULL;
	}
	memset(&o.arena, 0, sizeof(o.arena));
	memcpy(buf, &o, sizeof(o));
	*len = total;
	return buf;
}

/* rc_copy_fn: unflattens into the caller's s3meta_obj (its arena). */
static void obj_unflatten(void *arg, const void *val, size_t vlen)
{
	struct s3meta_obj *out = arg;
	if (vlen < sizeof(*out))
		return;
	uint8_t *p = arena_alloc(&out->arena, vlen);
	memcpy(p, val, vlen);
	struct s3meta_arena a = out->arena;
	memcpy(out, p, sizeof(*out));
	out->arena = a;
	for (size_t i = 0; i < OBJ_NSTR; i++) {
		const char **sp = obj_str_at(out, i);
		if (*sp)
			*sp = (const char *)p + (uintptr_t)*sp;
	}
	if (out->user_meta)
		out->user_meta = p + (uintptr_t)out->user_meta;
	if (out->locator)
		out->locator = p + (uintptr_t)out->locator;
}

int s3meta_object_get(struct s3meta *m, const char *bucket, const char *key, const char *version_id,
		      struct s3meta_obj *out)
{
	memset(out, 0, sizeof(*out));
	size_t klen;
	int rc = key_check(key, &klen);
	if (rc)
		return rc;
	int64_t seq = 0;
	enum st_id which = ST_VER_LATEST;
	if (version_id) {
		int k = vid_parse(version_id, &seq);
		if (k < 0)
			return -S3META_EINVALIDARGUMENT;
		which = k == 1 ? ST_VER_NULL : ST_VER_BY_ID;
	}
	/* The bucket row and then the version row, each read on its own (a
	 * bucket deleted in between leaves no versions: NoSuchKey). */
	struct bkt b;
	if ((rc = bkt_get_cached(m, bucket, &b, NULL)))
		return rc;
	uint8_t ck[1 + 8 + S3META_KEY_MAX];
	size_t cklen = which == ST_VER_LATEST ? rc_object_key(ck, b.id, key, klen) : 0;
	uint64_t gen = 0;
	struct vrow r;
	if (cklen && rc_get(m->cache, ck, cklen, obj_unflatten, out, &gen)) {
		r.found = true;
		r.dm = out->delete_marker;
		goto found;
	}
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	rc = vrow_read(c, which, b.id, key, klen, seq, &r, NULL, out);
	conn_put(m, c);
	if (rc)
		return rc;
	if (cklen && r.found) {
		size_t vlen;
		uint8_t *v = obj_flatten(out, &vlen);
		rc_put(m->cache, ck, cklen, v, vlen, gen);
		free(v);
	}
found:
	if (!r.found)
		rc = version_id ? -S3META_ENOSUCHVERSION : -S3META_ENOSUCHKEY;
	else if (r.dm)
		rc = version_id ? -S3META_EMETHODNOTALLOWED : -S3META_ENOSUCHKEY;
	return rc;
}

static int delete_version(struct conn *c, int64_t bucket_id, const char *key, size_t klen,
			  const char *version_id, struct s3meta_del *out, struct s3meta_locs *staged,
			  struct usage_delta *d)
{
	int64_t seq = 0;
	int k = vid_parse(version_id, &seq);
	if (k < 0)
		return -S3META_EINVALIDARGUMENT;
	snprintf(out->version_id, sizeof(out->version_id), "%s", version_id);
	struct vrow r;
	int rc = vrow_read(c, k == 1 ? ST_VER_NULL : ST_VER_BY_ID, bucket_id, key, klen, seq, &r, staged, NULL);
	if (rc || !r.found)
		return rc;
	out->found = true;
	out->delete_marker = r.dm;
	if ((rc = vrow_delete(c, &r, d)) || !r.latest)
		return rc;
	/* The next newest version becomes the latest. */
	if ((rc = vrow_read(c, ST_VER_LATEST, bucket_id, key, klen, 0, &r, NULL, NULL)))
		return rc;
	if (r.found)
		rc = vrow_set_latest(c, &r, true, d);
	return rc;
}

int s3meta_object_delete(struct s3meta *m, const char *bucket, const char *key, const char *version_id,
			 const char *owner, struct s3meta_del *out, struct s3meta_locs *freed)
{
	memset(out, 0, sizeof(*out));
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
	struct usage_delta d = { 0 };
	struct bkt b;
	if ((rc = bkt_lookup(c, bucket, &b)))
		goto out;
	if (version_id) {
		rc = delete_version(c, b.id, key, klen, version_id, out, &staged, &d);
	} else if (b.versioning == S3META_UNVERSIONED) {
		struct vrow r;
		rc = vrow_read(c, ST_VER_NULL, b.id, key, klen, 0, &r, &staged, NULL);
		if (!rc && r.found) {
			out->found = true;
			rc = vrow_delete(c, &r, &d);
		}
	} else {
		bool is_null = b.versioning == S3META_VERSIONING_SUSPENDED;
		int64_t id;
		struct s3meta_put marker = { .owner = owner };
		struct ver_new vn = { .p = &marker };
		rc = make_room(c, &b, key, klen, is_null, &d, &staged);
		if (!rc)
			rc = vrow_insert(m, c, b.id, key, klen, is_null, true, &vn, &id, &d);
		if (!rc) {
			out->found = true;
			out->delete_marker = true;
			vid_format(out->version_id, id, is_null);
		}
	}
	if (!rc)
		rc = usage_apply(c, b.id, &d);
out:
	rc = wend(m, c, rc);
	conn_put(m, c);
	locs_commit(&staged, freed, rc);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}
