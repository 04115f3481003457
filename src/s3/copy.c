/* copy.c - the byte pump of CopyObject and UploadPartCopy (see copy.h). */
#include "core/platform.h"
#include "s3/copy.h"

#include "s3/service.h"

/* The layer calls on_abort with h->aborted already set; a posted turn is
 * pending (or the pump has finished and handed over), so the answer comes
 * from that turn. */
static void copy_on_abort(struct s3req *r)
{
	(void)r;
}

/* One turn: up to S3COPY_STEP bytes, then another turn posted to the loop,
 * or `copied` when the source is read. */
static void copy_step(void *arg)
{
	struct s3copy *cp = arg;
	struct s3req *r = cp->r;
	if (r->h->aborted) {
		s3_error(r, 400, "RequestTimeout", "The connection went away during the copy.");
		return;
	}
	size_t moved = 0;
	while (cp->get && moved < S3COPY_STEP) {
		const uint8_t *p;
		size_t n;
		int rc = s3route_get_next(cp->get, &p, &n);
		if (rc < 0) {
			s3_error_internal(r, "copy source read", rc);
			return;
		}
		if (rc == 0) {
			s3route_get_close(cp->get);
			cp->get = NULL;
			break;
		}
		s3_cksum_update(&cp->md5, p, n);
		if (cp->have_ck)
			s3_cksum_update(&cp->ck, p, n);
		if ((rc = s3route_put_write(cp->put, p, n)) != 0) {
			s3_error_internal(r, "data write", rc);
			return;
		}
		cp->done += (int64_t)n;
		moved += n;
	}
	if (cp->get) {
		http_req_post(r->h, copy_step, cp);
		return;
	}
	if (cp->done != cp->size) {
		s3_error_internal(r, "copy source read", -SILT_ECORRUPT);
		return;
	}
	r->on_abort = NULL;
	cp->copied(r, cp);
}

void s3copy_start(struct s3req *r, struct s3copy *cp, const uint8_t *loc, size_t loclen, int64_t off, int64_t len,
		  enum s3_cksum_alg alg, void (*copied)(struct s3req *r, struct s3copy *cp))
{
	memset(cp, 0, sizeof(*cp));
	cp->r = r;
	cp->size = len;
	cp->copied = copied;
	int rc;
	if (len > 0 &&
	    (rc = s3route_get_open(r->svc->route, loc, loclen, (uint64_t)off, (uint64_t)len, &cp->get)) != 0) {
		cp->get = NULL;
		s3_error_internal(r, "copy source open", rc);
		return;
	}
	if ((rc = s3route_put_begin(r->svc->route, (unsigned)r->loop_idx, &cp->put)) != 0) {
		cp->put = NULL;
		s3_error_internal(r, "data put", rc);
		return;
	}
	s3_cksum_init(&cp->md5, S3_CKSUM_MD5);
	cp->have_md5 = true;
	if (alg != S3_CKSUM_NONE && alg != S3_CKSUM_MD5 && s3_cksum_init(&cp->ck, alg) == 0)
		cp->have_ck = true;
	r->on_abort = copy_on_abort;
	copy_step(cp);
}

void s3copy_digests(struct s3copy *cp, uint8_t md5[S3_CKSUM_MAX_DIGEST], char ck_b64[S3_CKSUM_B64_MAX])
{
	s3_cksum_final(&cp->md5, md5);
	ck_b64[0] = '\0';
	if (cp->have_ck)
		s3_cksum_final_b64(&cp->ck, ck_b64);
}

void s3copy_destroy(struct s3copy *cp)
{
	if (cp->put)
		s3route_put_abort(cp->put);
	if (cp->get)
		s3route_get_close(cp->get);
	if (cp->have_md5)
		s3_cksum_destroy(&cp->md5);
	if (cp->have_ck)
		s3_cksum_destroy(&cp->ck);
	cp->put = NULL;
	cp->get = NULL;
	cp->have_md5 = cp->have_ck = false;
}
