/* op_list.c - ListObjects (v1, v2), ListObjectVersions and
 * ListMultipartUploads.
 *
 * The metadata service does the walk (prefix, delimiter, markers, the
 * max + 1 look-ahead that makes IsTruncated exact, continuation tokens);
 * this file checks the query parameters, applies the per-API rules S3
 * clients rely on and writes the XML:
 *   - max-keys / max-uploads: absent = 1000, above 1000 = 1000, 0 allowed
 *     (an empty, untruncated page), anything not a non-negative integer is
 *     InvalidArgument;
 *   - encoding-type: only "url"; then Key, Prefix, Delimiter, the markers
 *     and CommonPrefixes/Prefix are percent-encoded (S3's URI encoding with
 *     '/' kept, which every SDK decodes with a form/URL unquote);
 *   - v1 sends NextMarker only when a delimiter was given and the page is
 *     truncated (without one, clients resume from the last Key);
 *   - v2 counts KeyCount over Contents and CommonPrefixes together, and
 *     sends Owner only with fetch-owner=true; v1 always sends it.
 *
 * Everything runs on the request's loop thread and answers at once (one
 * read transaction in the metadata service per page). */
#include "core/platform.h"
#include "core/log.h"
#include "s3/service.h"

/* Query parameters shared by the four listings. */
struct lq {
	const char *prefix, *delimiter, *marker, *id_marker, *token, *start_after;
	int max;
	bool url;
	bool fetch_owner;
};

/* Owner display names, looked up once per distinct owner in a page (the
 * user table is in memory; one owner per page is the usual case). */
struct owner_cache {
	const char *last;
	char name[S3META_DISPLAY_MAX + 1];
};

/* Parses a max-keys style parameter into *out (1000 when absent); false
 * after answering InvalidArgument. */
static bool parse_max(struct s3req *r, const char *param, int *out)
{
	bool present;
	const char *v = s3_query(r, param, &present);
	*out = S3META_LIST_MAX;
	if (!present)
		return true;
	char msg[128];
	snprintf(msg, sizeof(msg), "Provided %s not an integer or within integer range", param);
	if (!v || !*v) {
		s3_error(r, 400, "InvalidArgument", msg);
		return false;
	}
	int64_t n = 0;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9' || n > INT32_MAX) {
			s3_error(r, 400, "InvalidArgument", msg);
			return false;
		}
		n = n * 10 + (*p - '0');
	}
	if (n > INT32_MAX) {
		s3_error(r, 400, "InvalidArgument", msg);
		return false;
	}
	*out = n > S3META_LIST_MAX ? S3META_LIST_MAX : (int)n;
	return true;
}

/* encoding-type: absent, or "url". */
static bool parse_encoding(struct s3req *r, bool *url)
{
	bool present;
	const char *v = s3_query(r, "encoding-type", &present);
	*url = false;
	if (!present)
		return true;
	if (!v || strcasecmp(v, "url") != 0) {
		s3_error(r, 400, "InvalidArgument", "Invalid Encoding Method specified in Request");
		return false;
	}
	*url = true;
	return true;
}

/* A string parameter: NULL when absent or empty (the metadata service
 * treats both as "none"). A malformed escape is InvalidArgument. */
static bool parse_str(struct s3req *r, const char *param, const char **out)
{
	bool present;
	const char *v = s3_query(r, param, &present);
	*out = NULL;
	if (present && !v) {
		char msg[96];
		snprintf(msg, sizeof(msg), "The %s parameter is not validly encoded.", param);
		s3_error(r, 400, "InvalidArgument", msg);
		return false;
	}
	if (v && *v)
		*out = v;
	return true;
}

/* Writes <name>s</name>, percent-encoded when url. */
static void elem_enc(struct s3_xw *w, const char *name, const char *s, size_t n, bool url)
{
	if (!url) {
		s3_xw_elem_n(w, name, s, n);
		return;
	}
	struct wbuf tmp;
	wbuf_init(&tmp, n * 3 + 1, 0);
	s3_url_encode_buf(&tmp, s, n, false);
	s3_xw_elem_n(w, name, tmp.p ? (const char *)tmp.p : "", tmp.len);
	wbuf_destroy(&tmp);
}

static void elem_enc_z(struct s3_xw *w, const char *name, const char *s, bool url)
{
	s = s ? s : "";
	elem_enc(w, name, s, strlen(s), url);
}

static void owner_elem(struct s3req *r, struct s3_xw *w, const char *tag, const char *owner, struct owner_cache *oc)
{
	owner = owner ? owner : "";
	if (!oc->last || strcmp(oc->last, owner) != 0) {
		oc->name[0] = '\0';
		if (s3meta_user_display_name(r->svc->meta, owner, oc->name) != 0)
			oc->name[0] = '\0';
		oc->last = owner;
	}
	s3_xw_open(w, tag);
	s3_xw_elem(w, "ID", owner);
	s3_xw_elem(w, "DisplayName", oc->name[0] ? oc->name : owner);
	s3_xw_close(w, tag);
}

static void etag_elem(struct s3_xw *w, const char *etag)
{
	char q[S3META_ETAG_SIZE + 4];
	snprintf(q, sizeof(q), "\"%s\"", etag ? etag : "");
	s3_xw_elem(w, "ETag", q);
}

static void date_elem(struct s3_xw *w, const char *name, int64_t ms)
{
	char d[40];
	s3_iso_date(ms, d);
	s3_xw_elem(w, name, d);
}

static void common_prefixes(struct s3_xw *w, const struct s3meta_list *l, bool url)
{
	for (size_t i = 0; i < l->n; i++) {
		if (!l->v[i].is_prefix)
			continue;
		s3_xw_open(w, "CommonPrefixes");
		elem_enc(w, "Prefix", l->v[i].key, l->v[i].key_len, url);
		s3_xw_close(w, "CommonPrefixes");
	}
}

/* ---- ListObjects / ListObjectsV2 ---------------------------------------- */

void s3op_list_objects(struct s3req *r)
{
	bool v2 = r->op == S3OP_LIST_OBJECTS_V2;
	struct lq q = { 0 };
	if (v2) {
		const char *lt = s3_query(r, "list-type", NULL);
		if (!lt || strcmp(lt, "2") != 0) {
			s3_error(r, 400, "InvalidArgument", "Invalid List Type specified in Request");
			return;
		}
	}
	if (!parse_max(r, "max-keys", &q.max) || !parse_encoding(r, &q.url) ||
	    !parse_str(r, "prefix", &q.prefix) || !parse_str(r, "delimiter", &q.delimiter))
		return;
	bool token_present = false;
	if (v2) {
		if (!parse_str(r, "start-after", &q.start_after))
			return;
		q.token = s3_query(r, "continuation-token", &token_present);
		if (token_present && (!q.token || !*q.token)) {
			s3_error(r, 400, "InvalidArgument", "The continuation token provided is incorrect");
			return;
		}
		const char *fo = s3_query(r, "fetch-owner", NULL);
		q.fetch_owner = fo && strcasecmp(fo, "true") == 0;
	} else if (!parse_str(r, "marker", &q.marker)) {
		return;
	}
	if (!s3_bucket_check(r))
		return;

	struct s3meta_list_req lr = {
		.prefix = q.prefix,
		.delimiter = q.delimiter,
		.marker = v2 ? q.start_after : q.marker,
		.token = q.token,
		.max = q.max,
	};
	struct s3meta_list l;
	int rc = s3meta_list_objects(r->svc->meta, r->bucket, &lr, &l);
	if (rc != 0) {
		if (rc == -S3META_EINVALIDARGUMENT && q.token)
			s3_error(r, 400, "InvalidArgument", "The continuation token provided is incorrect");
		else
			s3_error_meta(r, rc);
		return;
	}

	struct wbuf b;
	struct s3_xw w;
	struct owner_cache oc = { 0 };
	s3_xml_begin(r, &b, &w, "ListBucketResult");
	s3_xw_elem(&w, "Name", r->bucket);
	elem_enc_z(&w, "Prefix", q.prefix, q.url);
	if (v2) {
		if (q.token)
			s3_xw_elem(&w, "ContinuationToken", q.token);
		if (l.truncated && l.next_token)
			s3_xw_elem(&w, "NextContinuationToken", l.next_token);
		s3_xw_elem_i64(&w, "KeyCount", (int64_t)l.n);
	} else {
		elem_enc_z(&w, "Marker", q.marker, q.url);
		if (l.truncated && q.delimiter && l.next_marker)
			elem_enc_z(&w, "NextMarker", l.next_marker, q.url);
	}
	s3_xw_elem_i64(&w, "MaxKeys", q.max);
	if (q.delimiter)
		elem_enc_z(&w, "Delimiter", q.delimiter, q.url);
	if (q.url)
		s3_xw_elem(&w, "EncodingType", "url");
	s3_xw_elem_bool(&w, "IsTruncated", l.truncated);
	if (v2 && q.start_after)
		elem_enc_z(&w, "StartAfter", q.start_after, q.url);
	for (size_t i = 0; i < l.n; i++) {
		const struct s3meta_entry *e = &l.v[i];
		if (e->is_prefix)
			continue;
		s3_xw_open(&w, "Contents");
		elem_enc(&w, "Key", e->key, e->key_len, q.url);
		date_elem(&w, "LastModified", e->mtime_ms);
		etag_elem(&w, e->etag);
		if (e->cksum_algo && *e->cksum_algo)
			s3_xw_elem(&w, "ChecksumAlgorithm", e->cksum_algo);
		s3_xw_elem_i64(&w, "Size", e->size);
		if (!v2 || q.fetch_owner)
			owner_elem(r, &w, "Owner", e->owner, &oc);
		s3_xw_elem(&w, "StorageClass", "STANDARD");
		s3_xw_close(&w, "Contents");
	}
	common_prefixes(&w, &l, q.url);
	s3_xw_close(&w, "ListBucketResult");
	s3meta_list_destroy(&l);
	s3_respond_xml(r, 200, &b);
}

/* ---- ListObjectVersions ---------------------------------------------------- */

void s3op_list_object_versions(struct s3req *r)
{
	struct lq q = { 0 };
	if (!parse_max(r, "max-keys", &q.max) || !parse_encoding(r, &q.url) ||
	    !parse_str(r, "prefix", &q.prefix) || !parse_str(r, "delimiter", &q.delimiter) ||
	    !parse_str(r, "key-marker", &q.marker) || !parse_str(r, "version-id-marker", &q.id_marker))
		return;
	if (q.id_marker && !q.marker) {
		s3_error(r, 400, "InvalidArgument",
			 "A version-id marker cannot be specified without a key marker.");
		return;
	}
	if (!s3_bucket_check(r))
		return;
	struct s3meta_list_req lr = {
		.prefix = q.prefix,
		.delimiter = q.delimiter,
		.marker = q.marker,
		.id_marker = q.id_marker,
		.max = q.max,
	};
	struct s3meta_list l;
	int rc = s3meta_list_versions(r->svc->meta, r->bucket, &lr, &l);
	if (rc != 0) {
		if (rc == -S3META_EINVALIDARGUMENT && q.id_marker)
			s3_error(r, 400, "InvalidArgument", "Invalid version id specified");
		else
			s3_error_meta(r, rc);
		return;
	}
	struct wbuf b;
	struct s3_xw w;
	struct owner_cache oc = { 0 };
	s3_xml_begin(r, &b, &w, "ListVersionsResult");
	s3_xw_elem(&w, "Name", r->bucket);
	elem_enc_z(&w, "Prefix", q.prefix, q.url);
	elem_enc_z(&w, "KeyMarker", q.marker, q.url);
	s3_xw_elem(&w, "VersionIdMarker", q.id_marker ? q.id_marker : "");
	if (l.truncated && l.next_marker) {
		elem_enc_z(&w, "NextKeyMarker", l.next_marker, q.url);
		if (l.next_id_marker)
			s3_xw_elem(&w, "NextVersionIdMarker", l.next_id_marker);
	}
	s3_xw_elem_i64(&w, "MaxKeys", q.max);
	if (q.delimiter)
		elem_enc_z(&w, "Delimiter", q.delimiter, q.url);
	if (q.url)
		s3_xw_elem(&w, "EncodingType", "url");
	s3_xw_elem_bool(&w, "IsTruncated", l.truncated);
	for (size_t i = 0; i < l.n; i++) {
		const struct s3meta_entry *e = &l.v[i];
		if (e->is_prefix)
			continue;
		const char *tag = e->delete_marker ? "DeleteMarker" : "Version";
		s3_xw_open(&w, tag);
		elem_enc(&w, "Key", e->key, e->key_len, q.url);
		s3_xw_elem(&w, "VersionId", e->version_id[0] ? e->version_id : "null");
		s3_xw_elem_bool(&w, "IsLatest", e->is_latest);
		date_elem(&w, "LastModified", e->mtime_ms);
		if (!e->delete_marker) {
			etag_elem(&w, e->etag);
			if (e->cksum_algo && *e->cksum_algo)
				s3_xw_elem(&w, "ChecksumAlgorithm", e->cksum_algo);
			s3_xw_elem_i64(&w, "Size", e->size);
			s3_xw_elem(&w, "StorageClass", "STANDARD");
		}
		owner_elem(r, &w, "Owner", e->owner, &oc);
		s3_xw_close(&w, tag);
	}
	common_prefixes(&w, &l, q.url);
	s3_xw_close(&w, "ListVersionsResult");
	s3meta_list_destroy(&l);
	s3_respond_xml(r, 200, &b);
}

/* ---- ListMultipartUploads --------------------------------------------------- */

void s3op_list_multipart_uploads(struct s3req *r)
{
	struct lq q = { 0 };
	if (!parse_max(r, "max-uploads", &q.max) || !parse_encoding(r, &q.url) ||
	    !parse_str(r, "prefix", &q.prefix) || !parse_str(r, "delimiter", &q.delimiter) ||
	    !parse_str(r, "key-marker", &q.marker) || !parse_str(r, "upload-id-marker", &q.id_marker))
		return;
	if (!s3_bucket_check(r))
		return;
	/* S3 ignores upload-id-marker without key-marker. */
	struct s3meta_list_req lr = {
		.prefix = q.prefix,
		.delimiter = q.delimiter,
		.marker = q.marker,
		.id_marker = q.marker ? q.id_marker : NULL,
		.max = q.max,
	};
	struct s3meta_list l;
	int rc = s3meta_list_uploads(r->svc->meta, r->bucket, &lr, &l);
	if (rc != 0) {
		s3_error_meta(r, rc);
		return;
	}
	struct wbuf b;
	struct s3_xw w;
	struct owner_cache oc = { 0 };
	s3_xml_begin(r, &b, &w, "ListMultipartUploadsResult");
	s3_xw_elem(&w, "Bucket", r->bucket);
	elem_enc_z(&w, "KeyMarker", q.marker, q.url);
	s3_xw_elem(&w, "UploadIdMarker", q.marker && q.id_marker ? q.id_marker : "");
	if (l.truncated && l.next_marker) {
		elem_enc_z(&w, "NextKeyMarker", l.next_marker, q.url);
		s3_xw_elem(&w, "NextUploadIdMarker", l.next_id_marker ? l.next_id_marker : "");
	} else {
		s3_xw_elem(&w, "NextKeyMarker", "");
		s3_xw_elem(&w, "NextUploadIdMarker", "");
	}
	if (q.delimiter)
		elem_enc_z(&w, "Delimiter", q.delimiter, q.url);
	elem_enc_z(&w, "Prefix", q.prefix, q.url);
	s3_xw_elem_i64(&w, "MaxUploads", q.max);
	if (q.url)
		s3_xw_elem(&w, "EncodingType", "url");
	s3_xw_elem_bool(&w, "IsTruncated", l.truncated);
	for (size_t i = 0; i < l.n; i++) {
		const struct s3meta_entry *e = &l.v[i];
		if (e->is_prefix)
			continue;
		s3_xw_open(&w, "Upload");
		elem_enc(&w, "Key", e->key, e->key_len, q.url);
		s3_xw_elem(&w, "UploadId", e->upload_id);
		owner_elem(r, &w, "Initiator", e->owner, &oc);
		owner_elem(r, &w, "Owner", e->owner, &oc);
		s3_xw_elem(&w, "StorageClass", "STANDARD");
		date_elem(&w, "Initiated", e->mtime_ms);
		s3_xw_close(&w, "Upload");
	}
	common_prefixes(&w, &l, q.url);
	s3_xw_close(&w, "ListMultipartUploadsResult");
	s3meta_list_destroy(&l);
	s3_respond_xml(r, 200, &b);
}
