/* op_list.c - ListObjects (v1, v2), ListObjectVersions,
 * ListMultipartUploads. (Being written.) */
#include "core/platform.h"
#include "s3/service.h"

static void todo(struct s3req *r)
{
	s3_error(r, 501, "NotImplemented", "Not implemented yet.");
}

void s3op_list_objects(struct s3req *r) { todo(r); }
void s3op_list_object_versions(struct s3req *r) { todo(r); }
void s3op_list_multipart_uploads(struct s3req *r) { todo(r); }
