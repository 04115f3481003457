/* fuzz_s3_xml.c - libFuzzer target for the S3 request-body parsers.
 *
 * Input: one selector byte (low two bits: CompleteMultipartUpload, Delete,
 * VersioningConfiguration, CreateBucketConfiguration), then the document.
 * Small caps make the limit paths reachable. A parsed Delete is written back
 * with the XML writer and must parse to the same keys (escaping round-trip). */
#include "core/platform.h"
#include "core/wbuf.h"
#include "s3/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void delete_roundtrip(const struct s3_delete_req *d)
{
	struct wbuf b;
	struct s3_xw w;
	wbuf_init(&b, 0, 0);
	s3_xw_init(&w, &b);
	s3_xw_decl(&w);
	s3_xw_open_ns(&w, "Delete", S3_XMLNS);
	for (size_t i = 0; i < d->nobjs; i++) {
		s3_xw_open(&w, "Object");
		s3_xw_elem_n(&w, "Key", d->objs[i].key, d->objs[i].key_len);
		if (d->objs[i].version_id)
			s3_xw_elem(&w, "VersionId", d->objs[i].version_id);
		s3_xw_close(&w, "Object");
	}
	s3_xw_elem_bool(&w, "Quiet", d->quiet);
	s3_xw_close(&w, "Delete");
	struct s3_delete_req again;
	struct s3_xml_limits lim = { .max_doc = 1u << 20, .max_text = 1u << 16 };
	const char *why;
	if (s3_xml_parse_delete(b.p, b.len, &lim, &again, &why) != 0)
		abort();
	if (again.nobjs != d->nobjs || again.quiet != d->quiet)
		abort();
	for (size_t i = 0; i < d->nobjs; i++)
		if (again.objs[i].key_len != d->objs[i].key_len ||
		    memcmp(again.objs[i].key, d->objs[i].key, d->objs[i].key_len) != 0)
			abort();
	s3_delete_req_free(&again);
	wbuf_destroy(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int sel = data[0] & 3;
	data++;
	size--;
	struct s3_xml_limits lim = { .max_doc = 64u << 10, .max_items = 50, .max_depth = 8,
				     .max_text = 512 };
	const char *why;
	switch (sel) {
	case 0: {
		struct s3_complete_mpu m;
		if (s3_xml_parse_complete_mpu(data, size, &lim, &m, &why) == 0) {
			if (m.nparts == 0 || m.nparts > 50)
				abort();
			for (size_t i = 0; i < m.nparts; i++)
				if (m.parts[i].part_number < 1 || !m.parts[i].etag)
					abort();
			s3_complete_mpu_free(&m);
		} else if (m.parts || m.nparts) {
			abort();
		}
		break;
	}
	case 1: {
		struct s3_delete_req d;
		if (s3_xml_parse_delete(data, size, &lim, &d, &why) == 0) {
			if (d.nobjs == 0 || d.nobjs > 50)
				abort();
			delete_roundtrip(&d);
			s3_delete_req_free(&d);
		}
		break;
	}
	case 2: {
		struct s3_versioning_cfg v;
		(void)s3_xml_parse_versioning(data, size, &lim, &v, &why);
		break;
	}
	default: {
		struct s3_create_bucket_cfg c;
		if (s3_xml_parse_create_bucket(data, size, &lim, &c, &why) == 0)
			s3_create_bucket_cfg_free(&c);
		break;
	}
	}
	return 0;
}
