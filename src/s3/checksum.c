/* checksum.c - S3 checksum algorithms and their encodings. See checksum.h. */
#include "core/platform.h"
#include "s3/checksum.h"
#include "core/base64.h"
#include "core/crc.h"

#include <endian.h>
#include <pthread.h>
#include <strings.h>

#include <openssl/evp.h>

/* ISA-L 2.30 (the version packaged here) has CRC-64 ECMA, ISO and Jones but
 * not the NVMe polynomial (crc64_rocksoft arrived later), so CRC64NVME is a
 * slice-by-8 table loop: about 1.5 GB/s per core, well above what one S3
 * connection delivers, and verified against the catalogue check value. */
#define CRC64NVME_POLY_REFL 0x9A6C9329AC4BC9B5ull

static uint64_t crc64_tab[8][256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_tab_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint64_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC64NVME_POLY_REFL : c >> 1;
		crc64_tab[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc64_tab[t][i] = (crc64_tab[t - 1][i] >> 8) ^
					  crc64_tab[0][crc64_tab[t - 1][i] & 0xff];
}

uint64_t s3_crc64nvme(uint64_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	pthread_once(&crc64_once, crc64_tab_init);
	crc = ~crc;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		w = le64toh(w) ^ crc;
		crc = crc64_tab[7][w & 0xff] ^ crc64_tab[6][(w >> 8) & 0xff] ^
		      crc64_tab[5][(w >> 16) & 0xff] ^ crc64_tab[4][(w >> 24) & 0xff] ^
		      crc64_tab[3][(w >> 32) & 0xff] ^ crc64_tab[2][(w >> 40) & 0xff] ^
		      crc64_tab[1][(w >> 48) & 0xff] ^ crc64_tab[0][w >> 56];
		b += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ crc64_tab[0][(crc ^ *b++) & 0xff];
	return ~crc;
}

/* OpenSSL 3 looks an algorithm up by name (provider query, locks) at every
 * EVP_DigestInit_ex with EVP_md5() & co.; implementations fetched once
 * skip that on every request. */
static EVP_MD *g_md5, *g_sha1, *g_sha256;

static void fetch_mds(void)
{
	g_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
	g_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!g_md5 || !g_sha1 || !g_sha256)
		abort(); /* the default provider has them */
}

const void *s3_cksum_md(enum s3_cksum_alg alg)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, fetch_mds);
	switch (alg) {
	case S3_CKSUM_SHA1:
		return g_sha1;
	case S3_CKSUM_SHA256:
		return g_sha256;
	case S3_CKSUM_MD5:
		return g_md5;
	default:
		return NULL;
	}
}

static const EVP_MD *alg_md(enum s3_cksum_alg alg)
{
	return s3_cksum_md(alg);
}

size_t s3_cksum_digest_len(enum s3_cksum_alg alg)
{
	switch (alg) {
	case S3_CKSUM_CRC32:
	case S3_CKSUM_CRC32C:
		return 4;
	case S3_CKSUM_CRC64NVME:
		return 8;
	case S3_CKSUM_SHA1:
		return 20;
	case S3_CKSUM_SHA256:
		return 32;
	case S3_CKSUM_MD5:
		return 16;
	default:
		return 0;
	}
}

int s3_cksum_init(struct s3_cksum *c, enum s3_cksum_alg alg)
{
	memset(c, 0, sizeof(*c));
	if (s3_cksum_digest_len(alg) == 0)
		return -SILT_EINVAL;
	c->alg = alg;
	const EVP_MD *md = alg_md(alg);
	if (md) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		if (!ctx || !EVP_DigestInit_ex(ctx, md, NULL))
			abort(); /* only allocation can fail here */
		c->md = ctx;
	}
	return 0;
}

void s3_cksum_reset(struct s3_cksum *c)
{
	c->crc32 = 0;
	c->crc64 = 0;
	if (c->md && !EVP_DigestInit_ex(c->md, alg_md(c->alg), NULL))
		abort();
}

void s3_cksum_destroy(struct s3_cksum *c)
{
	if (c->md)
		EVP_MD_CTX_free(c->md);
	c->md = NULL;
	c->alg = S3_CKSUM_NONE;
}

void s3_cksum_update(struct s3_cksum *c, const void *p, size_t n)
{
	switch (c->alg) {
	case S3_CKSUM_CRC32:
		c->crc32 = crc32_std(c->crc32, p, n);
		break;
	case S3_CKSUM_CRC32C:
		c->crc32 = crc32c(c->crc32, p, n);
		break;
	case S3_CKSUM_CRC64NVME:
		c->crc64 = s3_crc64nvme(c->crc64, p, n);
		break;
	case S3_CKSUM_SHA1:
	case S3_CKSUM_SHA256:
	case S3_CKSUM_MD5:
		if (n && !EVP_DigestUpdate(c->md, p, n))
			abort();
		break;
	default:
		break;
	}
}

size_t s3_cksum_final(struct s3_cksum *c, uint8_t out[S3_CKSUM_MAX_DIGEST])
{
	unsigned int len = 0;
	switch (c->alg) {
	case S3_CKSUM_CRC32:
	case S3_CKSUM_CRC32C:
		out[0] = (uint8_t)(c->crc32 >> 24);
		out[1] = (uint8_t)(c->crc32 >> 16);
		out[2] = (uint8_t)(c->crc32 >> 8);
		out[3] = (uint8_t)c->crc32;
		return 4;
	case S3_CKSUM_CRC64NVME:
		for (int i = 0; i < 8; i++)
			out[i] = (uint8_t)(c->crc64 >> (56 - 8 * i));
		return 8;
	case S3_CKSUM_SHA1:
	case S3_CKSUM_SHA256:
	case S3_CKSUM_MD5:
		if (!EVP_DigestFinal_ex(c->md, out, &len))
			abort();
		return len;
	default:
		return 0;
	}
}

void s3_cksum_final_b64(struct s3_cksum *c, char out[S3_CKSUM_B64_MAX])
{
	uint8_t d[S3_CKSUM_MAX_DIGEST];
	size_t n = s3_cksum_final(c, d);
	s3_b64_encode(d, n, out);
}

size_t s3_cksum_buf(enum s3_cksum_alg alg, const void *p, size_t n,
		    uint8_t out[S3_CKSUM_MAX_DIGEST])
{
	struct s3_cksum c;
	if (s3_cksum_init(&c, alg) < 0)
		return 0;
	s3_cksum_update(&c, p, n);
	size_t len = s3_cksum_final(&c, out);
	s3_cksum_destroy(&c);
	return len;
}

static const struct {
	enum s3_cksum_alg alg;
	const char *name;
	const char *header;
} alg_names[] = {
	{ S3_CKSUM_CRC32, "CRC32", "x-amz-checksum-crc32" },
	{ S3_CKSUM_CRC32C, "CRC32C", "x-amz-checksum-crc32c" },
	{ S3_CKSUM_CRC64NVME, "CRC64NVME", "x-amz-checksum-crc64nvme" },
	{ S3_CKSUM_SHA1, "SHA1", "x-amz-checksum-sha1" },
	{ S3_CKSUM_SHA256, "SHA256", "x-amz-checksum-sha256" },
	{ S3_CKSUM_MD5, "MD5", NULL },
};

const char *s3_cksum_alg_name(enum s3_cksum_alg alg)
{
	for (size_t i = 0; i < SILT_ARRAY_LEN(alg_names); i++)
		if (alg_names[i].alg == alg)
			return alg_names[i].name;
	return "";
}

const char *s3_cksum_alg_header(enum s3_cksum_alg alg)
{
	for (size_t i = 0; i < SILT_ARRAY_LEN(alg_names); i++)
		if (alg_names[i].alg == alg)
			return alg_names[i].header;
	return NULL;
}

static bool eq_nocase(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

enum s3_cksum_alg s3_cksum_alg_from_name(const char *s, size_t n)
{
	for (size_t i = 0; i < SILT_ARRAY_LEN(alg_names); i++)
		if (alg_names[i].header && eq_nocase(s, n, alg_names[i].name))
			return alg_names[i].alg;
	return S3_CKSUM_NONE;
}

enum s3_cksum_alg s3_cksum_alg_from_header(const char *s, size_t n)
{
	for (size_t i = 0; i < SILT_ARRAY_LEN(alg_names); i++)
		if (alg_names[i].header && eq_nocase(s, n, alg_names[i].header))
			return alg_names[i].alg;
	return S3_CKSUM_NONE;
}

size_t s3_b64_encode(const uint8_t *p, size_t n, char *out)
{
	return b64_encode(p, n, out);
}

int s3_b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	return b64_decode(s, n, out, cap, outlen);
}

void s3_hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Digit value + 1 of every hex digit, 0 for any other byte. Decoding by
 * table has no branch per character: hex digits are random, and a
 * digit-or-letter branch on each mispredicts about every other time. */
#define HEX_DIGITS(X) X('0', 0) X('1', 1) X('2', 2) X('3', 3) X('4', 4) X('5', 5) X('6', 6) \
	X('7', 7) X('8', 8) X('9', 9) X('a', 10) X('b', 11) X('c', 12) X('d', 13) X('e', 14) \
	X('f', 15) X('A', 10) X('B', 11) X('C', 12) X('D', 13) X('E', 14) X('F', 15)
#define HEX_ENTRY(c, v) [(unsigned char)(c)] = (v) + 1,
static const uint8_t hex_plus1[256] = { HEX_DIGITS(HEX_ENTRY) };

int s3_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n)
{
	if (slen != 2 * n)
		return -SILT_EINVAL;
	const uint8_t *u = (const uint8_t *)s;
	bool bad = false;
	for (size_t i = 0; i < n; i++) {
		unsigned hi = hex_plus1[u[2 * i]], lo = hex_plus1[u[2 * i + 1]];
		bad |= (hi == 0) | (lo == 0);
		/* Unsigned: a bad digit wraps here (defined) and is refused below. */
		out[i] = (uint8_t)(((hi - 1u) << 4 | ((lo - 1u) & 15u)) & 0xffu);
	}
	return bad ? -SILT_EINVAL : 0;
}
