/* base64.h - standard base64 with padding (RFC 4648), the form S3 uses for
 * checksums and Content-MD5 and silt uses for continuation tokens. Encoding
 * is OpenSSL's; decoding is strict (no whitespace, padding required) and
 * then handed to OpenSSL. */
#ifndef SILT_BASE64_H
#define SILT_BASE64_H

#include "core/platform.h"

/* out needs 4*ceil(n/3)+1 bytes; returns the length written (NUL added). */
size_t b64_encode(const uint8_t *p, size_t n, char *out);
/* 0, -SILT_EINVAL for anything but canonical base64, -SILT_ETOOBIG when the
 * result would exceed cap. */
int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen);

#endif
