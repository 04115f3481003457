/* copy.h - the byte pump of CopyObject and UploadPartCopy.
 *
 * A copy reads a range of a source object through the router and writes it
 * into a new data-node put, hashing MD5 (the ETag) and, if asked, one
 * x-amz-checksum on the way. Done in one go, a 5 GiB copy would hold its
 * loop for seconds, every other connection of the loop waiting; so the pump
 * moves at most S3COPY_STEP bytes per turn and posts itself back to the
 * loop (http_req_post) between turns. Once every byte is copied it calls
 * the op's `copied`, which seals the put and hands it, with the record to
 * write, to the group committer (s3/commit.h) -- or answers an error.
 *
 * A client that goes away mid-copy: while the pump runs the request's
 * on_abort only lets the layer note it (the request lives until answered),
 * and the next turn answers RequestTimeout; the unfinished put is dropped
 * by s3copy_destroy (the op's op_free), leaving nothing but garbage chunks.
 *
 * Threads: everything on the request's loop thread. */
#ifndef SILT_S3_COPY_H
#define SILT_S3_COPY_H

#include "core/platform.h"
#include "s3/checksum.h"
#include "s3/route.h"

#define S3COPY_STEP (8u << 20) /* bytes copied per loop turn */

struct s3req;

struct s3copy {
	struct s3req *r;
	struct s3route_get *get; /* NULL once the source is read (or if empty) */
	struct s3route_put *put; /* the copy; the op takes it in `copied` */
	struct s3_cksum md5, ck;
	bool have_md5, have_ck;
	int64_t size, done;
	void (*copied)(struct s3req *r, struct s3copy *cp);
};

/* Opens bytes [off, off + len) of the source locator and a new put on the
 * request's data stream, then starts the pump. alg other than NONE and MD5
 * adds that checksum (have_ck). cp lives in the op's state and the op's
 * op_free calls s3copy_destroy. Every failure is answered here; `copied`
 * may run before this returns (an empty or small source). */
void s3copy_start(struct s3req *r, struct s3copy *cp, const uint8_t *loc, size_t loclen, int64_t off, int64_t len,
		  enum s3_cksum_alg alg, void (*copied)(struct s3req *r, struct s3copy *cp));
/* In `copied`, once: the MD5 (16 bytes) and the checksum in base64 (""
 * without one). */
void s3copy_digests(struct s3copy *cp, uint8_t md5[S3_CKSUM_MAX_DIGEST], char ck_b64[S3_CKSUM_B64_MAX]);
/* Closes the source, drops a put not taken, frees the digests. Idempotent. */
void s3copy_destroy(struct s3copy *cp);

#endif
