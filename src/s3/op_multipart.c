/* op_multipart.c - multipart uploads: Create, UploadPart, UploadPartCopy,
 * Complete, Abort, ListParts. (Being written.) */
#include "core/platform.h"
#include "s3/service.h"

static void todo(struct s3req *r)
{
	s3_error(r, 501, "NotImplemented", "Not implemented yet.");
}

void s3op_create_multipart_upload(struct s3req *r) { todo(r); }
void s3op_upload_part(struct s3req *r) { todo(r); }
void s3op_upload_part_copy(struct s3req *r) { todo(r); }
void s3op_complete_multipart_upload(struct s3req *r) { todo(r); }
void s3op_abort_multipart_upload(struct s3req *r) { todo(r); }
void s3op_list_parts(struct s3req *r) { todo(r); }
