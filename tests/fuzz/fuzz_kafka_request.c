/* libFuzzer target: a whole Kafka request frame (header + body) through
 * header decoding and the dispatch table into every handler. Topic-mutating
 * admin APIs are skipped (the unit tests cover them) so a run does not fill
 * the disk with topics; Produce goes to a small pre-created topic whose
 * retention is enforced as the run goes. */
#include "core/platform.h"
#include "core/log.h"
#include "core/util.h"
#include "kafka/broker.h"
#include "kafka/dispatch.h"
#include "kafka/group.h"
#include "kafka/kreq.h"

#include "../../src/cli/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct silt_conf sc;
	struct kbroker_conf c;
	log_set_level(LOG_ERROR);
	config_defaults(&sc);
	c = sc.k;
	snprintf(g_dir, sizeof(g_dir), "/tmp/silt-fuzz-XXXXXX");
	if (!mkdtemp(g_dir))
		abort();
	snprintf(c.data_dir, sizeof(c.data_dir), "%s", g_dir);
	c.auto_create_topics = false;
	if (kbroker_open(&c) != 0 || kgroup_init(g_dir) != 0)
		abort();
	struct tconf o;
	tconf_defaults(&o);
	tconf_set(&o, TC_SEGMENT_BYTES, "65536", 5);
	tconf_set(&o, TC_RETENTION_BYTES, "262144", 6);
	kbroker_create_topic("fuzz", 4, 2, &o, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned runs;
	if (size < 4)
		return 0;
	int16_t key = (int16_t)(data[0] << 8 | data[1]);
	if (key == 19 || key == 20 || key == 33 || key == 37 || key == 44)
		return 0;
	struct kreq req;
	memset(&req, 0, sizeof(req));
	req.frame = xmalloc(size);
	memcpy(req.frame, data, size);
	req.frame_len = size;
	wbuf_init(&req.out, 0, 64u << 20);
	if (kafka_parse_header(&req) == 0) {
		int rc = kafka_dispatch(&req);
		if (rc == KH_PENDING && req.cancel)
			req.cancel(&req);
	}
	for (int i = 0; i < req.nfiles; i++)
		seglog_seg_unref(req.files[i].rd.seg);
	free(req.files);
	wbuf_destroy(&req.out);
	free(req.frame);
	if (++runs % 1000 == 0)
		kbroker_housekeeping(now_ms(), true);
	return 0;
}
