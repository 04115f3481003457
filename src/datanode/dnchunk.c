/* dnchunk.c - encoding and checking of the data node's chunk entries. */
#include "core/platform.h"
#include "datanode/dnchunk.h"

#include "core/crc.h"
#include "core/rd.h"
#include "core/wbuf.h"

void dnchunk_encode(uint8_t *p, const struct dnchunk_hdr *h)
{
	wr_be32(p, DNCHUNK_MAGIC);
	p[4] = DNCHUNK_VERSION;
	p[5] = 0;
	wr_be16(p + 6, DNCHUNK_HDR);
	wr_be64(p + 8, (uint64_t)h->seq);
	memcpy(p + 16, h->oid.b, 16);
	wr_be32(p + 32, h->index);
	wr_be32(p + 36, h->len);
	wr_be64(p + 40, (uint64_t)h->time_ms);
	wr_be32(p + 48, h->crc);
	wr_be32(p + 52, crc32c(0, p, 52));
}

int dnchunk_parse(const uint8_t *p, size_t len, struct dnchunk_hdr *h)
{
	struct rd r;
	rd_init(&r, p, len);
	uint32_t magic = rd_u32(&r);
	uint8_t version = rd_u8(&r);
	uint8_t flags = rd_u8(&r);
	uint16_t hlen = (uint16_t)rd_i16(&r);
	h->seq = rd_i64(&r);
	const uint8_t *oid = rd_bytes(&r, 16);
	h->index = rd_u32(&r);
	h->len = rd_u32(&r);
	h->time_ms = rd_i64(&r);
	h->crc = rd_u32(&r);
	uint32_t hcrc = rd_u32(&r);
	if (r.err || magic != DNCHUNK_MAGIC || version != DNCHUNK_VERSION || flags != 0 ||
	    hlen != DNCHUNK_HDR || hcrc != crc32c(0, p, 52) || h->seq < 0 ||
	    h->len > DNCHUNK_MAX_DATA)
		return -SILT_ECORRUPT;
	memcpy(h->oid.b, oid, 16);
	return 0;
}

int dnchunk_verify(const uint8_t *p, size_t len)
{
	struct dnchunk_hdr h;
	if (dnchunk_parse(p, len, &h) != 0 || len != (size_t)DNCHUNK_HDR + h.len ||
	    crc32c(0, p + DNCHUNK_HDR, h.len) != h.crc)
		return -SILT_ECORRUPT;
	return 0;
}

static int scan_header(const uint8_t *p, size_t len, struct seglog_entry *e)
{
	struct dnchunk_hdr h;
	if (dnchunk_parse(p, len, &h) != 0)
		return -SILT_ECORRUPT;
	e->size = (uint64_t)DNCHUNK_HDR + h.len;
	e->first_offset = e->last_offset = h.seq;
	e->max_timestamp = h.time_ms >= 0 ? h.time_ms : -1;
	return 0;
}

static int verify(const uint8_t *p, size_t len)
{
	return dnchunk_verify(p, len);
}

const struct seglog_format dnchunk_seglog_format = {
	.header_size = DNCHUNK_HDR,
	.scan_header = scan_header,
	.verify = verify,
};
