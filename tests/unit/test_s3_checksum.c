#include "core/platform.h"
#include "s3/checksum.h"
#include "test.h"

static void digest_hex(enum s3_cksum_alg alg, const char *s, char *hex)
{
	uint8_t d[S3_CKSUM_MAX_DIGEST];
	size_t n = s3_cksum_buf(alg, s, strlen(s), d);
	s3_hex_encode(d, n, hex);
}

TEST(s3_checksum_check_values)
{
	char hex[S3_CKSUM_HEX_MAX];
	/* The CRC catalogue "check" values: the CRC of ASCII "123456789". */
	digest_hex(S3_CKSUM_CRC32, "123456789", hex);
	CHECK(strcmp(hex, "cbf43926") == 0);
	digest_hex(S3_CKSUM_CRC32C, "123456789", hex);
	CHECK(strcmp(hex, "e3069283") == 0);
	digest_hex(S3_CKSUM_CRC64NVME, "123456789", hex);
	CHECK(strcmp(hex, "ae8b14860a799888") == 0);
	CHECK(s3_crc64nvme(0, "123456789", 9) == 0xAE8B14860A799888ull);
	/* FIPS 180 / RFC 1321 "abc" vectors. */
	digest_hex(S3_CKSUM_SHA1, "abc", hex);
	CHECK(strcmp(hex, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
	digest_hex(S3_CKSUM_SHA256, "abc", hex);
	CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
	digest_hex(S3_CKSUM_MD5, "abc", hex);
	CHECK(strcmp(hex, "900150983cd24fb0d6963f7d28e17f72") == 0);
	digest_hex(S3_CKSUM_MD5, "", hex);
	CHECK(strcmp(hex, "d41d8cd98f00b204e9800998ecf8427e") == 0);
	digest_hex(S3_CKSUM_CRC64NVME, "", hex);
	CHECK(strcmp(hex, "0000000000000000") == 0);
}

TEST(s3_checksum_streaming_equals_oneshot)
{
	static uint8_t buf[10007];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + (i >> 7));
	for (int a = S3_CKSUM_CRC32; a <= S3_CKSUM_MD5; a++) {
		uint8_t one[S3_CKSUM_MAX_DIGEST], inc[S3_CKSUM_MAX_DIGEST];
		size_t n1 = s3_cksum_buf((enum s3_cksum_alg)a, buf, sizeof(buf), one);
		struct s3_cksum c;
		REQUIRE(s3_cksum_init(&c, (enum s3_cksum_alg)a) == 0);
		/* Odd split sizes exercise the CRC64 tail loop and word loop. */
		size_t off = 0, step = 1;
		while (off < sizeof(buf)) {
			size_t k = SILT_MIN(step, sizeof(buf) - off);
			s3_cksum_update(&c, buf + off, k);
			off += k;
			step = step * 3 + 1;
		}
		size_t n2 = s3_cksum_final(&c, inc);
		CHECK_EQ_INT(n1, n2);
		CHECK_EQ_INT(n1, s3_cksum_digest_len((enum s3_cksum_alg)a));
		CHECK(memcmp(one, inc, n1) == 0);
		/* Reset gives a fresh computation. */
		s3_cksum_reset(&c);
		s3_cksum_update(&c, buf, sizeof(buf));
		CHECK_EQ_INT(s3_cksum_final(&c, inc), n1);
		CHECK(memcmp(one, inc, n1) == 0);
		s3_cksum_destroy(&c);
	}
	struct s3_cksum c;
	CHECK(s3_cksum_init(&c, S3_CKSUM_NONE) == -SILT_EINVAL);
}

TEST(s3_checksum_base64_forms)
{
	struct s3_cksum c;
	char b64[S3_CKSUM_B64_MAX];
	/* botocore's aws-chunked trailer for "hello world" carries
	 * x-amz-checksum-crc32:DUoRhQ== (big-endian CRC bytes in base64). */
	REQUIRE(s3_cksum_init(&c, S3_CKSUM_CRC32) == 0);
	s3_cksum_update(&c, "hello ", 6);
	s3_cksum_update(&c, "world", 5);
	s3_cksum_final_b64(&c, b64);
	CHECK(strcmp(b64, "DUoRhQ==") == 0);
	s3_cksum_destroy(&c);
	/* Content-MD5 of the empty body, as every client sends it. */
	REQUIRE(s3_cksum_init(&c, S3_CKSUM_MD5) == 0);
	s3_cksum_final_b64(&c, b64);
	CHECK(strcmp(b64, "1B2M2Y8AsgTpgAmY7PhCfg==") == 0);
	s3_cksum_destroy(&c);
	REQUIRE(s3_cksum_init(&c, S3_CKSUM_SHA256) == 0);
	s3_cksum_final_b64(&c, b64);
	CHECK(strcmp(b64, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=") == 0);
	s3_cksum_destroy(&c);
}

TEST(s3_checksum_b64_hex_codec)
{
	uint8_t out[16];
	size_t n;
	CHECK(s3_b64_decode("DUoRhQ==", 8, out, sizeof(out), &n) == 0);
	CHECK_EQ_INT(n, 4);
	CHECK(out[0] == 0x0d && out[1] == 0x4a && out[2] == 0x11 && out[3] == 0x85);
	CHECK(s3_b64_decode("YWI=", 4, out, sizeof(out), &n) == 0 && n == 2);
	CHECK(s3_b64_decode("YWJj", 4, out, sizeof(out), &n) == 0 && n == 3);
	CHECK(s3_b64_decode("", 0, out, sizeof(out), &n) == 0 && n == 0);
	CHECK(s3_b64_decode("YWI", 3, out, sizeof(out), &n) == -SILT_EINVAL);
	CHECK(s3_b64_decode("Y=I=", 4, out, sizeof(out), &n) == -SILT_EINVAL);
	CHECK(s3_b64_decode("====", 4, out, sizeof(out), &n) == -SILT_EINVAL);
	CHECK(s3_b64_decode("YW=I", 4, out, sizeof(out), &n) == -SILT_EINVAL);
	CHECK(s3_b64_decode("YWI=YWI=", 8, out, sizeof(out), &n) == -SILT_EINVAL);
	CHECK(s3_b64_decode("YW I", 4, out, sizeof(out), &n) == -SILT_EINVAL);
	CHECK(s3_b64_decode("YWJjYWJj", 8, out, 5, &n) == -SILT_ETOOBIG);
	char hex[9];
	s3_hex_encode(out, 0, hex);
	CHECK(hex[0] == '\0');
	CHECK(s3_hex_decode("0D4a1185", 8, out, 4) == 0 && out[1] == 0x4a);
	CHECK(s3_hex_decode("0D4a118", 7, out, 4) == -SILT_EINVAL);
	CHECK(s3_hex_decode("0D4a11g5", 8, out, 4) == -SILT_EINVAL);
	/* Every byte in either digit's place: accepted exactly when it is a
	 * hex digit of either case, with its value. */
	for (int c = 0; c < 256; c++) {
		int want = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
				: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		for (int k = 0; k < 2; k++) {
			char s[2] = { '7', '7' };
			s[k] = (char)c;
			uint8_t b = 0;
			int rc = s3_hex_decode(s, 2, &b, 1);
			if (want < 0) {
				CHECK(rc == -SILT_EINVAL);
			} else {
				CHECK(rc == 0);
				CHECK_EQ_INT(b, k == 0 ? (want << 4 | 7) : (0x70 | want));
			}
		}
	}
}

TEST(s3_checksum_names)
{
	CHECK(s3_cksum_alg_from_header("x-amz-checksum-crc32", 20) == S3_CKSUM_CRC32);
	CHECK(s3_cksum_alg_from_header("X-Amz-Checksum-CRC32C", 21) == S3_CKSUM_CRC32C);
	CHECK(s3_cksum_alg_from_header("x-amz-checksum-crc64nvme", 24) == S3_CKSUM_CRC64NVME);
	CHECK(s3_cksum_alg_from_header("x-amz-checksum-sha1", 19) == S3_CKSUM_SHA1);
	CHECK(s3_cksum_alg_from_header("x-amz-checksum-sha256", 21) == S3_CKSUM_SHA256);
	CHECK(s3_cksum_alg_from_header("x-amz-checksum-md5", 18) == S3_CKSUM_NONE);
	CHECK(s3_cksum_alg_from_header("x-amz-checksum-crc3", 19) == S3_CKSUM_NONE);
	CHECK(s3_cksum_alg_from_header("x-amz-checksum-type", 19) == S3_CKSUM_NONE);
	CHECK(s3_cksum_alg_from_name("crc32", 5) == S3_CKSUM_CRC32);
	CHECK(s3_cksum_alg_from_name("CRC64NVME", 9) == S3_CKSUM_CRC64NVME);
	CHECK(s3_cksum_alg_from_name("SHA256", 6) == S3_CKSUM_SHA256);
	CHECK(s3_cksum_alg_from_name("MD5", 3) == S3_CKSUM_NONE);
	CHECK(s3_cksum_alg_from_name("SHA2566", 6) == S3_CKSUM_SHA256); /* length-bounded */
	CHECK(strcmp(s3_cksum_alg_name(S3_CKSUM_CRC32C), "CRC32C") == 0);
	CHECK(strcmp(s3_cksum_alg_header(S3_CKSUM_SHA1), "x-amz-checksum-sha1") == 0);
	CHECK(s3_cksum_alg_header(S3_CKSUM_MD5) == NULL);
}
