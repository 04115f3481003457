/* dnchunk.h - the data node's chunk entry: how one piece of an object sits
 * in a volume file.
 *
 * A volume is a seglog; each entry is one chunk of one object, a fixed
 * 56-byte header followed by the chunk's bytes. All integers big-endian:
 *
 *   off len  field
 *     0   4  magic "SLTC"
 *     4   1  version (1)
 *     5   1  flags (0; readers reject unknown bits)
 *     6   2  header length (56)
 *     8   8  seq: the entry's offset in its volume (the seglog offset)
 *    16  16  object id
 *    32   4  chunk index within the object
 *    36   4  data length (<= DNCHUNK_MAX_DATA)
 *    40   8  write time, ms since the epoch
 *    48   4  CRC-32C of the data
 *    52   4  CRC-32C of header bytes 0..51
 *    56   .  data
 *
 * The header CRC lets a scan trust the length before reading the data; the
 * data CRC is checked by seglog recovery (verify) and by every read. Object
 * id and chunk index make an entry self-describing, so a reader confirms
 * that the bytes at a recorded location are the chunk it asked for. */
#ifndef SILT_DNCHUNK_H
#define SILT_DNCHUNK_H

#include "core/platform.h"
#include "storage/seglog.h"

#define DNCHUNK_MAGIC 0x534c5443u /* "SLTC" */
#define DNCHUNK_VERSION 1
#define DNCHUNK_HDR 56
/* No writer makes bigger chunks; a scan treats a larger length as corrupt. */
#define DNCHUNK_MAX_DATA (64u << 20)

/* A 128-bit object id; opaque to the data node. */
struct dn_oid {
	uint8_t b[16];
};

struct dnchunk_hdr {
	int64_t seq;
	struct dn_oid oid;
	uint32_t index;
	uint32_t len;
	int64_t time_ms;
	uint32_t crc; /* of the data */
};

/* Writes the 56 header bytes for h into p (computing the header CRC). */
void dnchunk_encode(uint8_t *p, const struct dnchunk_hdr *h);
/* Parses and checks the header at p (len >= DNCHUNK_HDR): magic, version,
 * flags, header length, header CRC, data length cap. 0 or -SILT_ECORRUPT. */
int dnchunk_parse(const uint8_t *p, size_t len, struct dnchunk_hdr *h);
/* Checks a whole entry (header and data, len == DNCHUNK_HDR + data length).
 * 0 or -SILT_ECORRUPT. */
int dnchunk_verify(const uint8_t *p, size_t len);

/* The seglog callbacks for volume files. */
extern const struct seglog_format dnchunk_seglog_format;

#endif
