/* op_bucket.c - bucket operations: ListBuckets, CreateBucket, HeadBucket,
 * DeleteBucket, GetBucketLocation, Get/PutBucketVersioning. The three that
 * write (create, delete, versioning) go through the group committer like
 * every other metadata write: no SQLite write transaction on a loop. */
#include "core/platform.h"
#include "core/log.h"
#include "s3/commit.h"
#include "s3/service.h"

#define XML_BODY_MAX (64 * 1024)

void s3op_list_buckets(struct s3req *r)
{
	struct s3meta_bucket *bs = NULL;
	size_t n = 0;
	int rc = s3meta_bucket_list(r->svc->meta, r->user, &bs, &n);
	if (rc != 0) {
		s3_error_meta(r, rc);
		return;
	}
	char name[S3META_DISPLAY_MAX + 1] = "";
	s3meta_user_display_name(r->svc->meta, r->user, name);
	struct wbuf b;
	struct s3_xw w;
	s3_xml_begin(r, &b, &w, "ListAllMyBucketsResult");
	s3_xw_open(&w, "Owner");
	s3_xw_elem(&w, "ID", r->user);
	s3_xw_elem(&w, "DisplayName", name);
	s3_xw_close(&w, "Owner");
	s3_xw_open(&w, "Buckets");
	for (size_t i = 0; i < n; i++) {
		char date[40];
		s3_iso_date(bs[i].created_ms, date);
		s3_xw_open(&w, "Bucket");
		s3_xw_elem(&w, "Name", bs[i].name);
		s3_xw_elem(&w, "CreationDate", date);
		s3_xw_close(&w, "Bucket");
	}
	s3_xw_close(&w, "Buckets");
	s3_xw_close(&w, "ListAllMyBucketsResult");
	free(bs);
	s3_respond_xml(r, 200, &b);
}

/* A bucket write as a committer job; done answers on the loop. */
static void bucket_commit(struct s3req *r, enum s3commit_kind kind, enum s3meta_versioning v,
			  void (*done)(struct s3req *r, struct s3commit_job *j))
{
	struct s3commit_job *j = s3_commit_job_new(r, kind);
	j->versioning = v;
	s3_commit(r, j, done);
}

static void create_committed(struct s3req *r, struct s3commit_job *j)
{
	if (j->rc != 0) {
		s3_error_meta(r, j->rc);
		return;
	}
	log_info("s3", "bucket %s created by %s", r->bucket, r->user);
	char loc[80];
	snprintf(loc, sizeof(loc), "/%s", r->bucket);
	http_resp_header(r->h, "Location", loc);
	s3_respond_empty(r, 200);
}

static void create_bucket_body(struct s3req *r, const struct s3body_digest *d)
{
	(void)d;
	size_t len;
	const uint8_t *body = s3_body_bytes(r, &len);
	if (len > 0) {
		struct s3_create_bucket_cfg cfg = { 0 };
		const char *why = NULL;
		if (s3_xml_parse_create_bucket(body, len, NULL, &cfg, &why) != 0) {
			s3_error(r, 400, "MalformedXML", why ? why : "The XML you provided was not well-formed.");
			return;
		}
		/* Any region is accepted: a single-node store has one place. */
		s3_create_bucket_cfg_free(&cfg);
	}
	bucket_commit(r, S3COMMIT_BUCKET_CREATE, S3META_UNVERSIONED, create_committed);
}

void s3op_create_bucket(struct s3req *r)
{
	int rc = s3meta_bucket_name_check(r->bucket);
	if (rc != 0) {
		s3_error_meta(r, rc);
		return;
	}
	s3_body_collect(r, XML_BODY_MAX, create_bucket_body);
}

void s3op_head_bucket(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	http_resp_header(r->h, "x-amz-bucket-region", r->svc->region);
	s3_respond_empty(r, 200);
}

static void delete_committed(struct s3req *r, struct s3commit_job *j)
{
	if (j->rc != 0) {
		s3_error_meta(r, j->rc);
		return;
	}
	log_info("s3", "bucket %s deleted by %s", r->bucket, r->user);
	s3_respond_empty(r, 204);
}

void s3op_delete_bucket(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	bucket_commit(r, S3COMMIT_BUCKET_DELETE, S3META_UNVERSIONED, delete_committed);
}

void s3op_get_bucket_location(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	struct wbuf b;
	struct s3_xw w;
	s3_xml_begin(r, &b, &w, "LocationConstraint");
	/* S3 answers an empty constraint for us-east-1. */
	if (strcmp(r->svc->region, "us-east-1") != 0)
		s3_xw_text(&w, r->svc->region, strlen(r->svc->region));
	s3_xw_close(&w, "LocationConstraint");
	s3_respond_xml(r, 200, &b);
}

void s3op_get_bucket_versioning(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	struct wbuf b;
	struct s3_xw w;
	s3_xml_begin(r, &b, &w, "VersioningConfiguration");
	if (r->bucket_row.versioning == S3META_VERSIONING_ENABLED)
		s3_xw_elem(&w, "Status", "Enabled");
	else if (r->bucket_row.versioning == S3META_VERSIONING_SUSPENDED)
		s3_xw_elem(&w, "Status", "Suspended");
	s3_xw_close(&w, "VersioningConfiguration");
	s3_respond_xml(r, 200, &b);
}

static void versioning_committed(struct s3req *r, struct s3commit_job *j)
{
	if (j->rc != 0) {
		s3_error_meta(r, j->rc);
		return;
	}
	log_info("s3", "bucket %s versioning %s", r->bucket,
		 j->versioning == S3META_VERSIONING_ENABLED ? "enabled" : "suspended");
	s3_respond_empty(r, 200);
}

static void put_versioning_body(struct s3req *r, const struct s3body_digest *d)
{
	(void)d;
	size_t len;
	const uint8_t *body = s3_body_bytes(r, &len);
	struct s3_versioning_cfg cfg;
	const char *why = NULL;
	if (s3_xml_parse_versioning(body, len, NULL, &cfg, &why) != 0) {
		s3_error(r, 400, "MalformedXML", why ? why : "The XML you provided was not well-formed.");
		return;
	}
	enum s3meta_versioning v;
	if (cfg.status == S3_VERSIONING_ENABLED)
		v = S3META_VERSIONING_ENABLED;
	else if (cfg.status == S3_VERSIONING_SUSPENDED)
		v = S3META_VERSIONING_SUSPENDED;
	else {
		s3_error(r, 400, "IllegalVersioningConfigurationException",
			 "The Versioning element must be specified as Enabled or Suspended.");
		return;
	}
	bucket_commit(r, S3COMMIT_BUCKET_VERSIONING, v, versioning_committed);
}

void s3op_put_bucket_versioning(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	s3_body_collect(r, XML_BODY_MAX, put_versioning_body);
}
