#include "core/platform.h"
#include "core/base64.h"

#include <openssl/evp.h>

size_t b64_encode(const uint8_t *p, size_t n, char *out)
{
	if (n > INT_MAX / 2) {
		out[0] = '\0';
		return 0;
	}
	return (size_t)EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/';
}

int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	/* EVP_DecodeBlock skips whitespace and reports padding as zero bytes;
	 * S3 wants exactly the canonical text, so check it first. */
	if (n % 4 || n > INT_MAX / 2)
		return -SILT_EINVAL;
	size_t pad = n >= 1 && s[n - 1] == '=' ? (n >= 2 && s[n - 2] == '=' ? 2 : 1) : 0;
	for (size_t i = 0; i < n - pad; i++)
		if (!b64_char(s[i]))
			return -SILT_EINVAL;
	size_t len = n / 4 * 3 - pad;
	if (len > cap)
		return -SILT_ETOOBIG;
	uint8_t stack[96];
	uint8_t *tmp = n / 4 * 3 <= sizeof(stack) ? stack : xmalloc(n / 4 * 3);
	int rc = 0;
	if (n > 0 && EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n) != (int)(n / 4 * 3))
		rc = -SILT_EINVAL;
	if (rc == 0) {
		memcpy(out, tmp, len);
		*outlen = len;
	}
	if (tmp != stack)
		free(tmp);
	return rc;
}
