/* kreq.h - the interface between the Kafka connection layer and API handlers.
 *
 * The connection layer (kafka/server.c) frames requests, decodes the request
 * header, looks the API up in the dispatch table (kafka/dispatch.c) and calls
 * its handler with a reader positioned at the request body. The handler
 * writes the response body (everything after the correlation id) into
 * req->out and returns:
 *   KH_DONE    - the response is complete; the layer frames and sends it;
 *   KH_NORESP  - send nothing (Produce with acks=0);
 *   KH_PENDING - answer later: the handler sets req->poll (and optionally
 *                req->cancel, req->pstate, req->deadline_ms). The layer calls
 *                poll(req, expired) on the connection's loop thread whenever
 *                kafka_kick() was called since (from any thread) and once the
 *                deadline passes (expired = true); poll returns KH_DONE when
 *                it has written the response, else KH_PENDING. If the
 *                connection closes first, cancel(req) is called (if set) and
 *                poll never again.
 * Responses leave in request order even when a later request completes
 * first. A handler that finds the request malformed (r->err after decoding)
 * returns KH_CLOSE: the layer logs one line and closes the connection, as
 * Kafka does.
 *
 * Everything in struct kreq is valid until the response is sent or the
 * connection closes. `body` views into the request frame, which stays
 * allocated while the request is pending. */
#ifndef SILT_KAFKA_KREQ_H
#define SILT_KAFKA_KREQ_H

#include "core/platform.h"
#include "core/rd.h"
#include "core/wbuf.h"
#include "storage/seglog.h"

enum { KH_DONE = 0, KH_NORESP = 1, KH_PENDING = 2, KH_CLOSE = 3 };

struct kconn;
struct kloop; /* per-thread Kafka context (one per event loop) */

struct kreq {
	struct kconn *conn;
	struct kloop *kl;
	int16_t api_key;
	int16_t api_version;
	int32_t correlation_id;
	struct slice client_id;
	struct slice body; /* request body after the header */
	struct wbuf out;   /* response body; the layer prepends size + correlation id */

	int (*poll)(struct kreq *req, bool expired);
	void (*cancel)(struct kreq *req);
	void *pstate;
	int64_t deadline_ms; /* monotonic; 0 = none */

	/* Internal to the connection layer. */
	struct kreq_file *files;
	int nfiles, capfiles;
	int state;
	struct kreq *next;           /* connection's queue, request order */
	struct kreq *pnext, *pprev;  /* loop's pending list */
	uint8_t *frame;              /* owned; body points into it (writable) */
	size_t frame_len;
	int64_t rx_ns;               /* request timing: when its bytes were received */
};

/* A file range spliced into the response at byte `at` of out (Fetch). */
struct kreq_file {
	size_t at;
	struct seglog_read rd; /* holds a segment reference until sent */
};

/* Appends a file range at the current end of req->out. The bytes count as
 * part of the response body (the caller accounts for them in any size
 * fields it writes). Takes over the reference in rd. */
void kreq_add_file(struct kreq *req, const struct seglog_read *rd);
/* Total response body bytes so far (memory + files). */
size_t kreq_body_len(const struct kreq *req);

/* The peer's IP address as text (no port); valid while the connection is. */
const char *kconn_peer_host(const struct kconn *c);

/* Wakes every loop that has pending requests so their poll runs soon. Any
 * thread; cheap when nothing is pending. */
void kafka_kick(void);

typedef int (*kafka_handler_fn)(struct kreq *req, struct rd *r);

#endif
