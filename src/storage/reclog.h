/* reclog.h - a small append-only file of CRC-framed records.
 *
 * For state that is kept whole in memory and persisted as a journal of
 * changes: the committed consumer offsets (kafka/offsets.c). Each record is
 *   u32 body length, u32 CRC-32C of the body, body          (big-endian)
 * and the log knows nothing about bodies: the owner builds them between
 * reclog_rec_begin and reclog_rec_end, and replays them at open through a
 * callback. Compaction is the owner's too: it writes out its live state as
 * records and reclog_rewrite swaps that in atomically.
 *
 * Recovery: at open, records are replayed in order; the first one that is
 * short, empty, over max_body, fails its CRC or that the callback refuses
 * ends the log, and the file is cut there (a torn append after a crash).
 * An append that fails is cut back, so a torn record is never followed by
 * good ones.
 *
 * Durability: an append is one write(2) (page cache: survives kill -9,
 * like Kafka's default), plus fdatasync when reclog_set_sync is on.
 *
 * Threads: none of its own and no lock: one owner calls it, serialized.
 * Errors: 0 or -errno (-ENOMEM when the records' wbuf overflowed). */
#ifndef SILT_RECLOG_H
#define SILT_RECLOG_H

#include "core/platform.h"
#include "core/wbuf.h"

struct reclog;

/* Applies one record body at open; false if it does not parse, which ends
 * the log there. body is valid during the call only. */
typedef bool (*reclog_replay_fn)(void *arg, const uint8_t *body, size_t len);

struct reclog_stats {
	uint64_t records;   /* replayed */
	uint64_t cut_bytes; /* torn or corrupt tail removed */
};

/* Opens (creating it, and fsyncing its directory when new) the log at
 * path, replays every record through replay and cuts a torn tail. The
 * directory must exist. stats may be NULL. 0 or -errno. */
int reclog_open(const char *path, uint32_t max_body, reclog_replay_fn replay, void *arg,
		struct reclog **out, struct reclog_stats *stats);
void reclog_close(struct reclog *l);

/* fdatasync after every append (off by default). */
void reclog_set_sync(struct reclog *l, bool sync);

/* Record framing in w: begin returns the record's start for end, which
 * patches its length and CRC once the body has been written. */
size_t reclog_rec_begin(struct wbuf *w);
void reclog_rec_end(struct wbuf *w, size_t at);

/* Appends the whole records in w (one write). On failure the file is cut
 * back to where it was. 0 or -errno (-ENOMEM when w overflowed). */
int reclog_append(struct reclog *l, const struct wbuf *w);
/* Replaces the whole file by the records in w, atomically (write a
 * temporary file, fsync, rename), and appends after them from then on. */
int reclog_rewrite(struct reclog *l, const struct wbuf *w);

/* Bytes of whole records in the file. */
uint64_t reclog_size(const struct reclog *l);
const char *reclog_path(const struct reclog *l);

#endif
