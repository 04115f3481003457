#include "core/platform.h"
#include "s3/xml.h"
#include "test.h"

#define P(s) s, strlen(s)

TEST(s3_xml_complete_mpu)
{
	/* The body boto3 sends, namespace included. */
	const char *doc =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Part><ETag>\"a54357aff0632cce46d942af68356b38\"</ETag><PartNumber>1</PartNumber></Part>\n"
		"  <Part>\n    <PartNumber> 2 </PartNumber>\n"
		"    <ETag>&quot;0c78aef83f66abc1fa1e8477f296d394&quot;</ETag>\n"
		"    <ChecksumCRC32>DUoRhQ==</ChecksumCRC32><ChecksumCRC32C>yZRlqg==</ChecksumCRC32C>"
		"<ChecksumCRC64NVME>AAAAAAAAAAA=</ChecksumCRC64NVME>"
		"<ChecksumSHA1>qZk+NkcGgWq6PiVxeFDCbJzQ2J0=</ChecksumSHA1>"
		"<ChecksumSHA256>ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=</ChecksumSHA256>"
		"<Unknown><Deep>x</Deep></Unknown>\n  </Part>\n"
		"</CompleteMultipartUpload>";
	struct s3_complete_mpu m;
	const char *why;
	REQUIRE(s3_xml_parse_complete_mpu(P(doc), NULL, &m, &why) == 0);
	REQUIRE(m.nparts == 2);
	CHECK_EQ_INT(m.parts[0].part_number, 1);
	CHECK(strcmp(m.parts[0].etag, "a54357aff0632cce46d942af68356b38") == 0);
	CHECK(m.parts[0].checksum_crc32 == NULL);
	CHECK_EQ_INT(m.parts[1].part_number, 2);
	CHECK(strcmp(m.parts[1].etag, "0c78aef83f66abc1fa1e8477f296d394") == 0);
	CHECK(strcmp(m.parts[1].checksum_crc32, "DUoRhQ==") == 0);
	CHECK(strcmp(m.parts[1].checksum_crc32c, "yZRlqg==") == 0);
	CHECK(strcmp(m.parts[1].checksum_crc64nvme, "AAAAAAAAAAA=") == 0);
	CHECK(strcmp(m.parts[1].checksum_sha1, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=") == 0);
	CHECK(strcmp(m.parts[1].checksum_sha256, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=") == 0);
	s3_complete_mpu_free(&m);

	/* Prefixed namespace works too. */
	doc = "<s3:CompleteMultipartUpload xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	      "<s3:Part><s3:PartNumber>7</s3:PartNumber><s3:ETag>e</s3:ETag></s3:Part>"
	      "</s3:CompleteMultipartUpload>";
	REQUIRE(s3_xml_parse_complete_mpu(P(doc), NULL, &m, &why) == 0);
	CHECK(m.nparts == 1 && m.parts[0].part_number == 7);
	s3_complete_mpu_free(&m);

	static const char *bad[] = {
		"",
		"<CompleteMultipartUpload></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>-1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>2147483648</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>1x</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag><ETag>y</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload><x/>",
		"<Delete><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Delete>",
		"<!DOCTYPE x [<!ENTITY a \"b\">]><CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&a;</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x&bogus;</ETag></Part></CompleteMultipartUpload>",
		"not xml at all",
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(bad); i++) {
		int rc = s3_xml_parse_complete_mpu(P(bad[i]), NULL, &m, &why);
		if (rc != -SILT_EINVAL)
			fprintf(stderr, "  bad[%zu] gave %d\n", i, rc);
		CHECK_EQ_INT(rc, -SILT_EINVAL);
		CHECK(why && *why);
		CHECK(m.nparts == 0 && m.parts == NULL);
	}
}

static char *many(const char *head, const char *item, size_t n, const char *tail)
{
	struct wbuf w;
	size_t len;
	wbuf_init(&w, 0, 0);
	wbuf_put(&w, head, strlen(head));
	for (size_t i = 0; i < n; i++) {
		/* item's "%zu" becomes i+1 (by hand: the format is not a literal). */
		const char *at = strstr(item, "%zu");
		char num[24];
		snprintf(num, sizeof(num), "%zu", i + 1);
		if (!at) {
			wbuf_put(&w, item, strlen(item));
			continue;
		}
		wbuf_put(&w, item, (size_t)(at - item));
		wbuf_put(&w, num, strlen(num));
		wbuf_put(&w, at + 3, strlen(at + 3));
	}
	wbuf_put(&w, tail, strlen(tail));
	wbuf_u8(&w, 0);
	return (char *)wbuf_steal(&w, &len);
}

TEST(s3_xml_caps)
{
	struct s3_complete_mpu m;
	const char *why;
	char *doc = many("<CompleteMultipartUpload>",
			 "<Part><PartNumber>%zu</PartNumber><ETag>\"0c78aef83f66abc1fa1e8477f296d394\"</ETag></Part>",
			 10000, "</CompleteMultipartUpload>");
	REQUIRE(s3_xml_parse_complete_mpu(P(doc), NULL, &m, &why) == 0);
	CHECK_EQ_INT(m.nparts, 10000);
	CHECK_EQ_INT(m.parts[9999].part_number, 10000);
	s3_complete_mpu_free(&m);
	free(doc);
	doc = many("<CompleteMultipartUpload>", "<Part><PartNumber>%zu</PartNumber><ETag>e</ETag></Part>",
		   10001, "</CompleteMultipartUpload>");
	CHECK_EQ_INT(s3_xml_parse_complete_mpu(P(doc), NULL, &m, &why), -SILT_EINVAL);
	CHECK(strcmp(why, "too many parts") == 0);
	/* The document cap is checked before parsing. */
	struct s3_xml_limits lim = { .max_doc = 1000 };
	CHECK_EQ_INT(s3_xml_parse_complete_mpu(P(doc), &lim, &m, &why), -SILT_ETOOBIG);
	free(doc);

	struct s3_delete_req d;
	doc = many("<Delete>", "<Object><Key>k%zu</Key></Object>", 1000, "</Delete>");
	REQUIRE(s3_xml_parse_delete(P(doc), NULL, &d, &why) == 0);
	CHECK_EQ_INT(d.nobjs, 1000);
	s3_delete_req_free(&d);
	free(doc);
	doc = many("<Delete>", "<Object><Key>k%zu</Key></Object>", 1001, "</Delete>");
	CHECK_EQ_INT(s3_xml_parse_delete(P(doc), NULL, &d, &why), -SILT_EINVAL);
	free(doc);

	/* Depth and text caps. */
	doc = many("<Delete><Object><Key>k</Key></Object>", "<a%zu>", 20, "");
	CHECK_EQ_INT(s3_xml_parse_delete(P(doc), NULL, &d, &why), -SILT_EINVAL);
	CHECK(strcmp(why, "XML nested too deeply") == 0);
	free(doc);
	doc = many("<Delete><Object><Key>", "0123456789abcdef%zu", 300, "</Key></Object></Delete>");
	CHECK_EQ_INT(s3_xml_parse_delete(P(doc), NULL, &d, &why), -SILT_EINVAL);
	CHECK(strcmp(why, "element text too long") == 0);
	lim = (struct s3_xml_limits){ .max_text = 1 << 16 };
	REQUIRE(s3_xml_parse_delete(P(doc), &lim, &d, &why) == 0);
	s3_delete_req_free(&d);
	free(doc);

	/* Entity expansion is refused outright (no DTD at all). */
	const char *lol = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
			  "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
			  "<Delete><Object><Key>&lol2;</Key></Object></Delete>";
	CHECK_EQ_INT(s3_xml_parse_delete(P(lol), NULL, &d, &why), -SILT_EINVAL);
	const char *ext = "<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
			  "<Delete><Object><Key>&x;</Key></Object></Delete>";
	CHECK_EQ_INT(s3_xml_parse_delete(P(ext), NULL, &d, &why), -SILT_EINVAL);
}

TEST(s3_xml_delete)
{
	const char *doc = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			  "<Object><Key> sp ace </Key></Object>"
			  "<Object><Key>a&amp;b&lt;c&gt;&quot;&apos;/é/日本</Key><VersionId>v1</VersionId></Object>"
			  "<Object><Key>tab&#9;nl&#10;cr&#13;</Key></Object>"
			  "<Object><Key></Key></Object>"
			  "<Quiet>true</Quiet></Delete>";
	struct s3_delete_req d;
	const char *why;
	REQUIRE(s3_xml_parse_delete(P(doc), NULL, &d, &why) == 0);
	REQUIRE(d.nobjs == 4);
	CHECK(d.quiet);
	CHECK(strcmp(d.objs[0].key, " sp ace ") == 0);
	CHECK(d.objs[0].version_id == NULL);
	CHECK(strcmp(d.objs[1].key, "a&b<c>\"'/é/日本") == 0);
	CHECK_EQ_INT(d.objs[1].key_len, strlen("a&b<c>\"'/é/日本"));
	CHECK(strcmp(d.objs[1].version_id, "v1") == 0);
	CHECK(strcmp(d.objs[2].key, "tab\tnl\ncr\r") == 0);
	CHECK(d.objs[3].key_len == 0);
	s3_delete_req_free(&d);

	static const char *bad[] = {
		"<Delete></Delete>",
		"<Delete><Quiet>true</Quiet></Delete>",
		"<Delete><Object><VersionId>v</VersionId></Object></Delete>",
		"<Delete><Object><Key>k</Key></Object><Quiet>yes</Quiet></Delete>",
		"<Delete><Object><Key>k</Key><Key>j</Key></Object></Delete>",
		"<Delete><Object><Key>k</Key></Object>",
		"<Delete><Object><Key>\xff</Key></Object></Delete>",
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(bad); i++)
		CHECK_EQ_INT(s3_xml_parse_delete(P(bad[i]), NULL, &d, &why), -SILT_EINVAL);
	doc = "<Delete><Quiet>False</Quiet><Object><Key>k</Key></Object></Delete>";
	REQUIRE(s3_xml_parse_delete(P(doc), NULL, &d, &why) == 0);
	CHECK(!d.quiet);
	s3_delete_req_free(&d);
}

TEST(s3_xml_versioning_and_create_bucket)
{
	struct s3_versioning_cfg v;
	const char *why;
	const char *doc = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			  "<Status>Enabled</Status></VersioningConfiguration>";
	REQUIRE(s3_xml_parse_versioning(P(doc), NULL, &v, &why) == 0);
	CHECK(v.status == S3_VERSIONING_ENABLED && v.mfa_delete == S3_MFA_DELETE_UNSET);
	doc = "<VersioningConfiguration><MfaDelete>Disabled</MfaDelete><Status>Suspended</Status>"
	      "</VersioningConfiguration>";
	REQUIRE(s3_xml_parse_versioning(P(doc), NULL, &v, &why) == 0);
	CHECK(v.status == S3_VERSIONING_SUSPENDED && v.mfa_delete == S3_MFA_DELETE_DISABLED);
	doc = "<VersioningConfiguration/>";
	REQUIRE(s3_xml_parse_versioning(P(doc), NULL, &v, &why) == 0);
	CHECK(v.status == S3_VERSIONING_UNSET);
	doc = "<VersioningConfiguration><Status>enabled</Status></VersioningConfiguration>";
	CHECK_EQ_INT(s3_xml_parse_versioning(P(doc), NULL, &v, &why), -SILT_EINVAL);
	doc = "<VersioningConfig><Status>Enabled</Status></VersioningConfig>";
	CHECK_EQ_INT(s3_xml_parse_versioning(P(doc), NULL, &v, &why), -SILT_EINVAL);

	struct s3_create_bucket_cfg c;
	doc = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	      "<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
	REQUIRE(s3_xml_parse_create_bucket(P(doc), NULL, &c, &why) == 0);
	CHECK(strcmp(c.location_constraint, "eu-west-1") == 0);
	s3_create_bucket_cfg_free(&c);
	doc = "<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>";
	REQUIRE(s3_xml_parse_create_bucket(P(doc), NULL, &c, &why) == 0);
	CHECK(c.location_constraint && c.location_constraint[0] == '\0');
	s3_create_bucket_cfg_free(&c);
	doc = "<CreateBucketConfiguration></CreateBucketConfiguration>";
	REQUIRE(s3_xml_parse_create_bucket(P(doc), NULL, &c, &why) == 0);
	CHECK(c.location_constraint == NULL);
	doc = "<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint>"
	      "<LocationConstraint>b</LocationConstraint></CreateBucketConfiguration>";
	CHECK_EQ_INT(s3_xml_parse_create_bucket(P(doc), NULL, &c, &why), -SILT_EINVAL);
	CHECK(c.location_constraint == NULL);
	CHECK_EQ_INT(s3_xml_parse_create_bucket(P("<CreateBucketConfiguration>"), NULL, &c, &why),
		     -SILT_EINVAL);
}

TEST(s3_xml_writer)
{
	struct wbuf b;
	struct s3_xw w;
	wbuf_init(&b, 0, 0);
	s3_xw_init(&w, &b);
	s3_xw_decl(&w);
	s3_xw_open_ns(&w, "ListBucketResult", S3_XMLNS);
	s3_xw_elem(&w, "Name", "bucket");
	s3_xw_elem(&w, "Key", "a&b<c>\"d'e\tf\ng\rh\x01i/é");
	s3_xw_elem_i64(&w, "KeyCount", -12);
	s3_xw_elem_bool(&w, "IsTruncated", false);
	s3_xw_elem_n(&w, "Prefix", "abc", 2);
	s3_xw_close(&w, "ListBucketResult");
	CHECK(s3_xw_ok(&w));
	CHECK_EQ_INT(w.depth, 0);
	wbuf_u8(&b, 0);
	const char *want = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			   "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			   "<Name>bucket</Name>"
			   "<Key>a&amp;b&lt;c&gt;&quot;d&apos;e&#x9;f&#xA;g&#xD;h&#x1;i/é</Key>"
			   "<KeyCount>-12</KeyCount><IsTruncated>false</IsTruncated>"
			   "<Prefix>ab</Prefix></ListBucketResult>";
	CHECK(strcmp((char *)b.p, want) == 0);
	if (strcmp((char *)b.p, want) != 0)
		fprintf(stderr, "got %s\n", (char *)b.p);
	wbuf_destroy(&b);

	/* Round trip: what the writer escapes, the parser decodes back. */
	wbuf_init(&b, 0, 0);
	s3_xw_init(&w, &b);
	s3_xw_open(&w, "Delete");
	s3_xw_open(&w, "Object");
	const char *key = "x&y<z>\"'\t\n\r end ";
	s3_xw_elem(&w, "Key", key);
	s3_xw_close(&w, "Object");
	s3_xw_close(&w, "Delete");
	struct s3_delete_req d;
	const char *why;
	REQUIRE(s3_xml_parse_delete(b.p, b.len, NULL, &d, &why) == 0);
	CHECK(strcmp(d.objs[0].key, key) == 0);
	s3_delete_req_free(&d);
	wbuf_destroy(&b);

	/* The wbuf's hard max bounds the output. */
	/* (initial 8: wbuf_reserve does not clamp its default first
	 * allocation of 256 to a smaller max -- see report.) */
	wbuf_init(&b, 8, 16);
	s3_xw_init(&w, &b);
	s3_xw_elem(&w, "Name", "a long bucket name");
	CHECK(!s3_xw_ok(&w));
	wbuf_destroy(&b);
}
