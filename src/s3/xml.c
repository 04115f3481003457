/* xml.c - S3 request-body parsers on expat, and the response writer. See xml.h. */
#include "core/platform.h"
#include "s3/xml.h"

#include <strings.h>

#include <expat.h>

#define HARD_MAX_DEPTH 64
#define NAME_MAX_LEN 48
/* Namespaced element names arrive as "uri<sep>local". */
#define NS_SEP '\x01'

enum doc { DOC_COMPLETE, DOC_DELETE, DOC_VERSIONING, DOC_CREATE_BUCKET };

struct px {
	XML_Parser p;
	enum doc doc;
	const char *root;
	int depth, max_depth;
	char names[HARD_MAX_DEPTH + 1][NAME_MAX_LEN]; /* "" for over-long (unknown) names */
	struct wbuf text;
	size_t max_text, max_items;
	int err;
	const char *why;
	void *out;
	size_t cap; /* allocated items */
};

static void px_fail(struct px *x, int err, const char *why)
{
	if (x->err)
		return;
	x->err = err;
	x->why = why;
	XML_StopParser(x->p, XML_FALSE);
}

static const char *local_name(const XML_Char *name)
{
	const char *s = strrchr(name, NS_SEP);
	return s ? s + 1 : name;
}

/* The element text with surrounding XML whitespace removed. */
static void trimmed(const struct px *x, const char **s, size_t *n)
{
	const char *p = x->text.len ? (const char *)x->text.p : "";
	size_t len = x->text.len;
	while (len && strchr(" \t\r\n", p[len - 1]))
		len--;
	while (len && strchr(" \t\r\n", *p))
		p++, len--;
	*s = p;
	*n = len;
}

static bool is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* Stores a copy of the trimmed text in *dst; a repeated element is malformed. */
static void take_str(struct px *x, char **dst, bool trim, const char *what)
{
	if (*dst) {
		px_fail(x, -SILT_EINVAL, what);
		return;
	}
	const char *s;
	size_t n;
	if (trim) {
		trimmed(x, &s, &n);
	} else {
		s = x->text.len ? (const char *)x->text.p : "";
		n = x->text.len;
	}
	*dst = xstrndup(s, n);
}

static void *grow(struct px *x, void *arr, size_t n, size_t elem)
{
	if (n < x->cap)
		return arr;
	x->cap = x->cap ? x->cap * 2 : 16;
	arr = xrealloc(arr, x->cap * elem);
	memset((char *)arr + n * elem, 0, (x->cap - n) * elem);
	return arr;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct px *x = ud;
	(void)attrs;
	if (x->err)
		return;
	const char *ln = local_name(name);
	if (++x->depth > x->max_depth) {
		px_fail(x, -SILT_EINVAL, "XML nested too deeply");
		return;
	}
	if (x->depth == 1 && strcmp(ln, x->root) != 0) {
		px_fail(x, -SILT_EINVAL, "unexpected root element");
		return;
	}
	size_t ll = strlen(ln);
	if (ll < NAME_MAX_LEN)
		memcpy(x->names[x->depth], ln, ll + 1);
	else
		x->names[x->depth][0] = '\0';
	wbuf_reset(&x->text);
	if (x->depth != 2)
		return;
	if (x->doc == DOC_COMPLETE && strcmp(ln, "Part") == 0) {
		struct s3_complete_mpu *m = x->out;
		if (m->nparts == x->max_items) {
			px_fail(x, -SILT_EINVAL, "too many parts");
			return;
		}
		m->parts = grow(x, m->parts, m->nparts, sizeof(*m->parts));
		m->nparts++;
	} else if (x->doc == DOC_DELETE && strcmp(ln, "Object") == 0) {
		struct s3_delete_req *d = x->out;
		if (d->nobjs == x->max_items) {
			px_fail(x, -SILT_EINVAL, "too many objects");
			return;
		}
		d->objs = grow(x, d->objs, d->nobjs, sizeof(*d->objs));
		d->nobjs++;
	}
}

static void part_field(struct px *x, struct s3_complete_part *pt, const char *ln)
{
	const char *s;
	size_t n;
	if (strcmp(ln, "PartNumber") == 0) {
		trimmed(x, &s, &n);
		int64_t v = 0;
		if (pt->part_number || n == 0 || n > 10)
			goto bad;
		for (size_t i = 0; i < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				goto bad;
			v = v * 10 + (s[i] - '0');
		}
		if (v < 1 || v > INT32_MAX)
			goto bad;
		pt->part_number = (int32_t)v;
		return;
bad:
		px_fail(x, -SILT_EINVAL, "invalid PartNumber");
	} else if (strcmp(ln, "ETag") == 0) {
		take_str(x, &pt->etag, true, "duplicate ETag");
		char *e = pt->etag;
		size_t el = e ? strlen(e) : 0;
		if (el >= 2 && e[0] == '"' && e[el - 1] == '"') {
			memmove(e, e + 1, el - 2);
			e[el - 2] = '\0';
		}
	} else if (strcmp(ln, "ChecksumCRC32") == 0) {
		take_str(x, &pt->checksum_crc32, true, "duplicate ChecksumCRC32");
	} else if (strcmp(ln, "ChecksumCRC32C") == 0) {
		take_str(x, &pt->checksum_crc32c, true, "duplicate ChecksumCRC32C");
	} else if (strcmp(ln, "ChecksumCRC64NVME") == 0) {
		take_str(x, &pt->checksum_crc64nvme, true, "duplicate ChecksumCRC64NVME");
	} else if (strcmp(ln, "ChecksumSHA1") == 0) {
		take_str(x, &pt->checksum_sha1, true, "duplicate ChecksumSHA1");
	} else if (strcmp(ln, "ChecksumSHA256") == 0) {
		take_str(x, &pt->checksum_sha256, true, "duplicate ChecksumSHA256");
	}
}

static void end_complete(struct px *x, const char *ln)
{
	struct s3_complete_mpu *m = x->out;
	if (x->depth == 3 && strcmp(x->names[2], "Part") == 0) {
		part_field(x, &m->parts[m->nparts - 1], ln);
	} else if (x->depth == 2 && strcmp(ln, "Part") == 0) {
		struct s3_complete_part *pt = &m->parts[m->nparts - 1];
		if (!pt->part_number || !pt->etag)
			px_fail(x, -SILT_EINVAL, "Part needs PartNumber and ETag");
	}
}

static void end_delete(struct px *x, const char *ln)
{
	struct s3_delete_req *d = x->out;
	const char *s;
	size_t n;
	if (x->depth == 3 && strcmp(x->names[2], "Object") == 0) {
		struct s3_delete_obj *o = &d->objs[d->nobjs - 1];
		if (strcmp(ln, "Key") == 0) {
			/* Keys are taken verbatim: spaces at either end are part of them. */
			take_str(x, &o->key, false, "duplicate Key");
			o->key_len = x->text.len;
		} else if (strcmp(ln, "VersionId") == 0) {
			take_str(x, &o->version_id, true, "duplicate VersionId");
		}
	} else if (x->depth == 2 && strcmp(ln, "Object") == 0) {
		if (!d->objs[d->nobjs - 1].key)
			px_fail(x, -SILT_EINVAL, "Object needs a Key");
	} else if (x->depth == 2 && strcmp(ln, "Quiet") == 0) {
		trimmed(x, &s, &n);
		if (n == 4 && strncasecmp(s, "true", 4) == 0)
			d->quiet = true;
		else if (n == 5 && strncasecmp(s, "false", 5) == 0)
			d->quiet = false;
		else
			px_fail(x, -SILT_EINVAL, "Quiet must be true or false");
	}
}

static void end_versioning(struct px *x, const char *ln)
{
	struct s3_versioning_cfg *v = x->out;
	const char *s;
	size_t n;
	if (x->depth != 2)
		return;
	trimmed(x, &s, &n);
	if (strcmp(ln, "Status") == 0) {
		if (is(s, n, "Enabled"))
			v->status = S3_VERSIONING_ENABLED;
		else if (is(s, n, "Suspended"))
			v->status = S3_VERSIONING_SUSPENDED;
		else
			px_fail(x, -SILT_EINVAL, "Status must be Enabled or Suspended");
	} else if (strcmp(ln, "MfaDelete") == 0) {
		if (is(s, n, "Enabled"))
			v->mfa_delete = S3_MFA_DELETE_ENABLED;
		else if (is(s, n, "Disabled"))
			v->mfa_delete = S3_MFA_DELETE_DISABLED;
		else
			px_fail(x, -SILT_EINVAL, "MfaDelete must be Enabled or Disabled");
	}
}

static void end_create_bucket(struct px *x, const char *ln)
{
	struct s3_create_bucket_cfg *c = x->out;
	if (x->depth == 2 && strcmp(ln, "LocationConstraint") == 0)
		take_str(x, &c->location_constraint, true, "duplicate LocationConstraint");
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct px *x = ud;
	if (x->err)
		return;
	const char *ln = x->names[x->depth];
	(void)name;
	switch (x->doc) {
	case DOC_COMPLETE:
		end_complete(x, ln);
		break;
	case DOC_DELETE:
		end_delete(x, ln);
		break;
	case DOC_VERSIONING:
		end_versioning(x, ln);
		break;
	case DOC_CREATE_BUCKET:
		end_create_bucket(x, ln);
		break;
	}
	x->depth--;
	wbuf_reset(&x->text);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct px *x = ud;
	if (x->err)
		return;
	if ((size_t)len > x->max_text - x->text.len) {
		px_fail(x, -SILT_EINVAL, "element text too long");
		return;
	}
	wbuf_put(&x->text, s, (size_t)len);
}

/* S3 bodies never need a DTD; refusing one rules out entity expansion and
 * external entities altogether. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal;
	px_fail(ud, -SILT_EINVAL, "DOCTYPE is not allowed");
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
				   const XML_Char *value, int vlen, const XML_Char *base,
				   const XML_Char *sysid, const XML_Char *pubid,
				   const XML_Char *notation)
{
	(void)name, (void)is_param, (void)value, (void)vlen, (void)base, (void)sysid;
	(void)pubid, (void)notation;
	px_fail(ud, -SILT_EINVAL, "entity declarations are not allowed");
}

static int run(enum doc doc, const char *root, const void *buf, size_t len,
	       const struct s3_xml_limits *lim, size_t def_doc, size_t def_items, void *out,
	       const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	*why = "";
	size_t max_doc = lim && lim->max_doc ? lim->max_doc : def_doc;
	if (len > max_doc || len > INT_MAX) {
		*why = "XML document too large";
		return -SILT_ETOOBIG;
	}
	struct px *x = xcalloc(1, sizeof(*x));
	x->doc = doc;
	x->root = root;
	x->out = out;
	x->max_depth = lim && lim->max_depth ? SILT_MIN(lim->max_depth, HARD_MAX_DEPTH) : 16;
	x->max_items = lim && lim->max_items ? lim->max_items : def_items;
	x->max_text = lim && lim->max_text ? lim->max_text : 4096;
	wbuf_init(&x->text, 256, 0);
	x->p = XML_ParserCreateNS(NULL, NS_SEP);
	if (!x->p)
		abort();
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_text);
	XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
	XML_SetEntityDeclHandler(x->p, on_entity_decl);
	enum XML_Status st = XML_Parse(x->p, buf, (int)len, XML_TRUE);
	int rc = x->err;
	*why = x->why;
	if (!rc && st != XML_STATUS_OK) {
		rc = -SILT_EINVAL;
		*why = XML_ErrorString(XML_GetErrorCode(x->p));
	}
	if (!rc && doc == DOC_COMPLETE && ((struct s3_complete_mpu *)out)->nparts == 0) {
		rc = -SILT_EINVAL;
		*why = "at least one Part is required";
	}
	if (!rc && doc == DOC_DELETE && ((struct s3_delete_req *)out)->nobjs == 0) {
		rc = -SILT_EINVAL;
		*why = "at least one Object is required";
	}
	XML_ParserFree(x->p);
	wbuf_destroy(&x->text);
	free(x);
	return rc;
}

int s3_xml_parse_complete_mpu(const void *doc, size_t len, const struct s3_xml_limits *lim,
			      struct s3_complete_mpu *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	int rc = run(DOC_COMPLETE, "CompleteMultipartUpload", doc, len, lim, 4u << 20, 10000, out,
		     why);
	if (rc)
		s3_complete_mpu_free(out);
	return rc;
}

void s3_complete_mpu_free(struct s3_complete_mpu *m)
{
	for (size_t i = 0; i < m->nparts; i++) {
		struct s3_complete_part *p = &m->parts[i];
		free(p->etag);
		free(p->checksum_crc32);
		free(p->checksum_crc32c);
		free(p->checksum_crc64nvme);
		free(p->checksum_sha1);
		free(p->checksum_sha256);
	}
	free(m->parts);
	memset(m, 0, sizeof(*m));
}

int s3_xml_parse_delete(const void *doc, size_t len, const struct s3_xml_limits *lim,
			struct s3_delete_req *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	int rc = run(DOC_DELETE, "Delete", doc, len, lim, 2u << 20, 1000, out, why);
	if (rc)
		s3_delete_req_free(out);
	return rc;
}

void s3_delete_req_free(struct s3_delete_req *d)
{
	for (size_t i = 0; i < d->nobjs; i++) {
		free(d->objs[i].key);
		free(d->objs[i].version_id);
	}
	free(d->objs);
	memset(d, 0, sizeof(*d));
}

int s3_xml_parse_versioning(const void *doc, size_t len, const struct s3_xml_limits *lim,
			    struct s3_versioning_cfg *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	int rc = run(DOC_VERSIONING, "VersioningConfiguration", doc, len, lim, 64u << 10, 0, out,
		     why);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

int s3_xml_parse_create_bucket(const void *doc, size_t len, const struct s3_xml_limits *lim,
			       struct s3_create_bucket_cfg *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	int rc = run(DOC_CREATE_BUCKET, "CreateBucketConfiguration", doc, len, lim, 64u << 10, 0,
		     out, why);
	if (rc)
		s3_create_bucket_cfg_free(out);
	return rc;
}

void s3_create_bucket_cfg_free(struct s3_create_bucket_cfg *c)
{
	free(c->location_constraint);
	c->location_constraint = NULL;
}

/* ------------------------------------------------------------------ */
/* Writer                                                             */

static void put(struct s3_xw *w, const char *s)
{
	wbuf_put(w->b, s, strlen(s));
}

void s3_xw_init(struct s3_xw *w, struct wbuf *b)
{
	w->b = b;
	w->depth = 0;
}

void s3_xw_decl(struct s3_xw *w)
{
	put(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
}

void s3_xw_open_ns(struct s3_xw *w, const char *name, const char *ns)
{
	wbuf_u8(w->b, '<');
	put(w, name);
	if (ns) {
		put(w, " xmlns=\"");
		s3_xw_text(w, ns, strlen(ns));
		wbuf_u8(w->b, '"');
	}
	wbuf_u8(w->b, '>');
	w->depth++;
}

void s3_xw_open(struct s3_xw *w, const char *name)
{
	s3_xw_open_ns(w, name, NULL);
}

void s3_xw_close(struct s3_xw *w, const char *name)
{
	put(w, "</");
	put(w, name);
	wbuf_u8(w->b, '>');
	w->depth--;
}

void s3_xw_text(struct s3_xw *w, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		const char *rep = NULL;
		char num[8];
		switch (c) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			if (c < 0x20) {
				snprintf(num, sizeof(num), "&#x%X;", c);
				rep = num;
			}
			break;
		}
		if (!rep)
			continue;
		wbuf_put(w->b, s + run, i - run);
		put(w, rep);
		run = i + 1;
	}
	wbuf_put(w->b, s + run, n - run);
}

void s3_xw_elem_n(struct s3_xw *w, const char *name, const char *text, size_t n)
{
	s3_xw_open(w, name);
	s3_xw_text(w, text, n);
	s3_xw_close(w, name);
}

void s3_xw_elem(struct s3_xw *w, const char *name, const char *text)
{
	s3_xw_elem_n(w, name, text, strlen(text));
}

void s3_xw_elem_i64(struct s3_xw *w, const char *name, int64_t v)
{
	char num[24];
	snprintf(num, sizeof(num), "%" PRId64, v);
	s3_xw_elem(w, name, num);
}

void s3_xw_elem_bool(struct s3_xw *w, const char *name, bool v)
{
	s3_xw_elem(w, name, v ? "true" : "false");
}
