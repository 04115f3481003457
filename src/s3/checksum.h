/* checksum.h - the checksums S3 clients send with object data, as streaming
 * objects: CRC32, CRC32C, CRC64NVME, SHA1, SHA256 and MD5 (Content-MD5 and
 * ETags).
 *
 * S3 puts checksums in headers and aws-chunked trailers as base64 of the
 * big-endian digest bytes (a CRC32 is 4 bytes, CRC64NVME 8, SHA256 32);
 * ETags are hex MD5. Both encodings are here, plus the mapping from
 * `x-amz-checksum-<alg>` header names and `x-amz-sdk-checksum-algorithm`
 * values to an algorithm.
 *
 * Threads: a struct s3_cksum belongs to one thread; the functions keep no
 * shared state except a CRC64 table built once (thread-safe). */
#ifndef SILT_S3_CHECKSUM_H
#define SILT_S3_CHECKSUM_H

#include "core/platform.h"

enum s3_cksum_alg {
	S3_CKSUM_NONE = 0,
	S3_CKSUM_CRC32,
	S3_CKSUM_CRC32C,
	S3_CKSUM_CRC64NVME,
	S3_CKSUM_SHA1,
	S3_CKSUM_SHA256,
	S3_CKSUM_MD5,
};

#define S3_CKSUM_MAX_DIGEST 32
/* Buffer sizes including the terminating NUL. */
#define S3_CKSUM_B64_MAX 45 /* base64 of 32 bytes is 44 chars */
#define S3_CKSUM_HEX_MAX 65

struct s3_cksum {
	enum s3_cksum_alg alg;
	uint32_t crc32;
	uint64_t crc64;
	void *md; /* EVP_MD_CTX for the hash algorithms */
};

/* The OpenSSL digest (const EVP_MD *) of a hash algorithm, fetched once per
 * process (OpenSSL 3 would look it up by name at every use of EVP_md5()
 * and friends); NULL for the CRCs. Any thread. */
const void *s3_cksum_md(enum s3_cksum_alg alg);

/* 0, or -SILT_EINVAL for S3_CKSUM_NONE/unknown. Pair with s3_cksum_destroy. */
int s3_cksum_init(struct s3_cksum *c, enum s3_cksum_alg alg);
void s3_cksum_update(struct s3_cksum *c, const void *p, size_t n);
/* Writes the digest (big-endian for CRCs) and returns its length. The
 * object may be finalised once; call s3_cksum_reset to reuse it. */
size_t s3_cksum_final(struct s3_cksum *c, uint8_t out[S3_CKSUM_MAX_DIGEST]);
void s3_cksum_reset(struct s3_cksum *c);
void s3_cksum_destroy(struct s3_cksum *c);
/* Finalises into base64 (the S3 header/trailer form). */
void s3_cksum_final_b64(struct s3_cksum *c, char out[S3_CKSUM_B64_MAX]);

/* One-shot helper: digest of a whole buffer; returns its length (0 for an
 * unknown algorithm). */
size_t s3_cksum_buf(enum s3_cksum_alg alg, const void *p, size_t n,
		    uint8_t out[S3_CKSUM_MAX_DIGEST]);

/* Raw CRC-64/NVME (reflected 0xAD93D23594C93659, init and xorout ~0): pass
 * 0 to start, the previous result to continue. */
uint64_t s3_crc64nvme(uint64_t crc, const void *p, size_t n);

size_t s3_cksum_digest_len(enum s3_cksum_alg alg);
/* "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", "MD5"; "" for NONE. */
const char *s3_cksum_alg_name(enum s3_cksum_alg alg);
/* "x-amz-checksum-crc32" ...; NULL for NONE and MD5 (which has no such header). */
const char *s3_cksum_alg_header(enum s3_cksum_alg alg);
/* From an x-amz-sdk-checksum-algorithm / ChecksumAlgorithm value, case-insensitive. */
enum s3_cksum_alg s3_cksum_alg_from_name(const char *s, size_t n);
/* From a header or trailer name ("x-amz-checksum-crc32"), case-insensitive.
 * MD5 is not an x-amz-checksum algorithm and is never returned. */
enum s3_cksum_alg s3_cksum_alg_from_header(const char *s, size_t n);

/* Standard base64 with padding. out needs 4*ceil(n/3)+1 bytes; returns the
 * length written (without the NUL). */
size_t s3_b64_encode(const uint8_t *p, size_t n, char *out);
/* Strict decode (padding required, no whitespace). 0, -SILT_EINVAL for bad
 * input, -SILT_ETOOBIG when the result exceeds cap. */
int s3_b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen);
/* Lower-case hex; out needs 2n+1 bytes. */
void s3_hex_encode(const uint8_t *p, size_t n, char *out);
/* Decodes exactly 2*n hex digits (either case). 0 or -SILT_EINVAL. */
int s3_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n);

#endif
