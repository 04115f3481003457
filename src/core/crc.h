/* crc.h - CRC-32C (Kafka record batches, log records) and CRC-32 (gzip, S3),
 * both from ISA-L, whose SSE4.2/PCLMUL kernels run at memory speed. */
#ifndef SILT_CRC_H
#define SILT_CRC_H

#include "core/platform.h"

#include <isa-l/crc.h>

/* Standard CRC-32C (Castagnoli) as Kafka computes it: init and xorout ~0. */
static inline uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
	return ~crc32_iscsi((unsigned char *)(uintptr_t)p, (int)n, ~crc);
}

/* Standard CRC-32 (IEEE, zlib's crc32()). */
static inline uint32_t crc32_std(uint32_t crc, const void *p, size_t n)
{
	return crc32_gzip_refl(crc, (const unsigned char *)p, (uint64_t)n);
}

#endif
