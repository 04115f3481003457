#include "core/platform.h"
#include "core/wbuf.h"

void wbuf_init(struct wbuf *w, size_t initial, size_t max)
{
	w->len = 0;
	w->err = false;
	w->max = max ? max : SIZE_MAX / 2;
	w->cap = initial;
	w->p = initial ? xmalloc(initial) : NULL;
}

void wbuf_destroy(struct wbuf *w)
{
	free(w->p);
	w->p = NULL;
	w->len = w->cap = 0;
}

bool wbuf_reserve(struct wbuf *w, size_t n)
{
	if (w->err)
		return false;
	if (n > w->max || w->len > w->max - n) {
		w->err = true;
		return false;
	}
	if (w->cap - w->len >= n)
		return true;
	size_t want = w->cap ? w->cap : SILT_MIN((size_t)256, w->max);
	while (want - w->len < n)
		want = want > w->max / 2 ? w->max : want * 2;
	w->p = xrealloc(w->p, want);
	w->cap = want;
	return true;
}

void wbuf_reset(struct wbuf *w)
{
	w->len = 0;
	w->err = false;
}

uint8_t *wbuf_steal(struct wbuf *w, size_t *len)
{
	uint8_t *p = w->p;
	*len = w->len;
	w->p = NULL;
	w->len = w->cap = 0;
	return p;
}
